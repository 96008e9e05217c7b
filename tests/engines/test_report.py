"""Aggregation and the quality rubric."""

from __future__ import annotations

from orchestrion.domain.findings import Evidence, Finding, Severity
from orchestrion.domain.tasks import AgentRun, StepStatus
from orchestrion.engines.report import aggregate, headline


def _run(
    agent: str,
    findings: list[Finding],
    *,
    evidence: tuple[str, ...] = ("e1",),
    status: StepStatus = StepStatus.SUCCEEDED,
) -> AgentRun:
    return AgentRun(
        task_id="t",
        step_id=agent,
        agent_id=agent,
        status=status,
        evidence=tuple(Evidence(id=i, tool="tool", summary=i) for i in evidence),
        findings=tuple(findings),
    )


def _finding(title: str, severity: Severity, agent: str, evidence: tuple[str, ...] = ("e1",)) -> Finding:
    return Finding(
        title=title,
        severity=severity,
        agent_id=agent,
        evidence_ids=evidence,
        grounded=bool(evidence),
        recommendation=f"fix {title}",
    )


def test_duplicate_findings_merge_keeping_worst_severity_and_confirmations() -> None:
    runs = [
        _run("a", [_finding("SQL injection in login", Severity.MEDIUM, "a", ("e1",))], evidence=("e1",)),
        _run("b", [_finding("SQL  Injection in LOGIN", Severity.HIGH, "b", ("e2",))], evidence=("e2",)),
    ]
    agg = aggregate(runs, planned_specialists=2)
    assert len(agg.findings) == 1
    merged = agg.findings[0]
    assert merged.severity is Severity.HIGH
    assert set(merged.evidence_ids) == {"e1", "e2"}
    assert len(merged.confirmed_by) == 1
    assert agg.quality.agreement == 1.0


def test_severity_disagreement_lowers_agreement() -> None:
    runs = [
        _run("a", [_finding("Weak TLS", Severity.CRITICAL, "a")]),
        _run("b", [_finding("weak tls", Severity.LOW, "b")]),
        _run("c", [_finding("Old banner", Severity.LOW, "c")]),
    ]
    assert aggregate(runs, planned_specialists=3).quality.agreement == 0.5


def test_citations_of_unknown_evidence_are_ungrounded_and_ranked_last() -> None:
    runs = [
        _run(
            "a",
            [
                _finding("Invented", Severity.CRITICAL, "a", ("nope",)),
                _finding("Real", Severity.LOW, "a", ("e1",)),
            ],
        )
    ]
    agg = aggregate(runs, planned_specialists=1)
    assert [f.title for f in agg.findings] == ["Real", "Invented"]
    assert agg.findings[1].grounded is False and agg.findings[1].evidence_ids == ()
    assert agg.quality.grounding == 0.5
    assert agg.remediation == ("fix Real",)  # no to-do item from a claim without evidence
    assert "cite no evidence" in headline(findings=agg.findings, counts=agg.counts, agents=1, inputs=1)


def test_failed_and_evidence_free_agents_lower_completion_and_coverage() -> None:
    runs = [
        _run("a", [_finding("x", Severity.LOW, "a")]),
        _run("b", [], evidence=()),
        _run("c", [], status=StepStatus.FAILED),
    ]
    agg = aggregate(runs, planned_specialists=4)
    assert agg.quality.completion == 0.5
    assert agg.quality.coverage == 0.25


def test_ranking_puts_worst_first_and_remediation_follows_it() -> None:
    runs = [
        _run(
            "a",
            [
                _finding("low", Severity.LOW, "a"),
                _finding("crit", Severity.CRITICAL, "a"),
                _finding("med", Severity.MEDIUM, "a"),
            ],
        )
    ]
    agg = aggregate(runs, planned_specialists=1)
    assert [f.title for f in agg.findings] == ["crit", "med", "low"]
    assert agg.remediation == ("fix crit", "fix med", "fix low")
    assert agg.counts["critical"] == 1 and agg.quality.overall == 1.0


def test_no_findings_is_vacuously_grounded() -> None:
    agg = aggregate([_run("a", [])], planned_specialists=1)
    assert agg.findings == () and agg.quality.grounding == 1.0
    assert headline(findings=(), counts=agg.counts, agents=1, inputs=2).startswith("No findings")
