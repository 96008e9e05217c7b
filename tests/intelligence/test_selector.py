"""Team selection: capabilities, explicit requests, Thompson sampling over history, load."""

from __future__ import annotations

import functools
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest

from orchestrion.domain.tasks import StepStatus, TaskStatus
from orchestrion.exceptions import UnknownChoiceError, ValidationError
from orchestrion.intelligence.features import Submission
from orchestrion.store import tasks as task_store
from tests.intelligence.conftest import START, Lab, add_team

DRAWS = 200
# Pure selection logic runs on SQLite only; what reads the store (history, loads, plans) on both.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def triage_lab(make_lab: Any, **settings: Any) -> Lab:
    """Type `triage`: one-member teams from alpha (the designer's default) and beta.

    History: alpha succeeded in 3 of 6 runs, beta in 9 of 10.
    """
    lab: Lab = await make_lab(**settings)
    add_team(lab.registry, "triage", {"alpha": ["a", "shared"], "beta": ["b", "shared"]}, default=["alpha"])
    for ok in [True, False] * 3:
        await lab.run("triage", agents=["alpha"], status=TaskStatus.SUCCEEDED if ok else TaskStatus.FAILED)
    for i in range(10):
        await lab.run("triage", agents=["beta"], status=TaskStatus.FAILED if i == 0 else TaskStatus.SUCCEEDED)
    return lab


async def draw_teams(
    lab: Lab, *, required: Sequence[str] = (), draws: int = DRAWS
) -> Counter[tuple[str, ...]]:
    teams: Counter[tuple[str, ...]] = Counter()
    for _ in range(draws):
        assessment = await lab.intelligence.assess(
            Submission(task_type="triage", submitted_at=START, required_capabilities=tuple(required))
        )
        teams[assessment.selection.team] += 1
    return teams


@sqlite_only
async def test_a_capability_nobody_offers_is_refused_with_the_choices(make_lab: Any) -> None:
    lab: Lab = await make_lab()
    with pytest.raises(ValidationError) as caught:
        await lab.intelligence.assess(
            Submission(task_type="code_analysis", submitted_at=START, required_capabilities=("telepathy",))
        )
    error = caught.value
    assert error.field == "required_capabilities"
    assert error.choices == ["code_quality", "secret_detection", "security_lint", "static_analysis"]
    assert error.details["field"] == "required_capabilities"
    assert "telepathy" in error.message


@sqlite_only
async def test_an_explicit_team_must_cover_the_required_capabilities(make_lab: Any) -> None:
    lab: Lab = await make_lab()
    add_team(lab.registry, "triage", {"alpha": ["a"], "beta": ["b"]}, default=["alpha"])
    with pytest.raises(ValidationError) as caught:
        await lab.intelligence.assess(
            Submission(
                task_type="triage", submitted_at=START, agents=("alpha",), required_capabilities=("b",)
            )
        )
    assert caught.value.field == "required_capabilities" and caught.value.choices == ["a"]


@sqlite_only
async def test_explicit_agents_override_the_selector(make_lab: Any) -> None:
    lab = await triage_lab(make_lab)
    for _ in range(20):
        assessment = await lab.intelligence.assess(
            Submission(task_type="triage", submitted_at=START, agents=("alpha",))
        )
        selection = assessment.selection
        assert selection.strategy == "explicit"
        assert selection.team == ("alpha",)
        assert selection.reasons == ("agents requested explicitly",)
    with pytest.raises(UnknownChoiceError) as caught:
        await lab.intelligence.assess(
            Submission(task_type="triage", submitted_at=START, agents=("code_analyzer",))
        )
    assert caught.value.field == "agents" and caught.value.choices == ["alpha", "beta"]


async def test_thompson_sampling_prefers_the_better_history_and_still_explores(make_lab: Any) -> None:
    lab = await triage_lab(make_lab, rng=random.Random(2024))
    teams = await draw_teams(lab)
    assert set(teams) <= {("alpha",), ("beta",)}
    assert teams[("beta",)] > 0.8 * DRAWS
    # The default member with a worse record is still tried now and then.
    assert teams[("alpha",)] >= 2

    assessment = await lab.intelligence.assess(Submission(task_type="triage", submitted_at=START))
    selection = assessment.selection
    assert selection.strategy == "thompson"
    scores = {s.agent_id: s for s in selection.candidates}
    assert set(scores) == {"alpha", "beta"}
    assert scores["alpha"].runs == 6 and scores["alpha"].success_mean == round(4 / 8, 4)
    assert scores["beta"].runs == 10 and scores["beta"].success_mean == round(10 / 12, 4)
    assert [s.chosen for s in selection.candidates].count(True) == 1
    chosen = next(s for s in selection.candidates if s.chosen)
    assert selection.team == (chosen.agent_id,) and chosen.reason == "best score"
    assert all(0 <= s.sample <= 1 and s.load == 0 and s.score == s.sample for s in selection.candidates)
    # alpha: Beta(1 + 3 successes + 1 for being the default, 1 + 3 failures); beta: Beta(1 + 9, 1 + 1).
    posterior = "Beta(5, 4) over 6 runs" if chosen.agent_id == "alpha" else "Beta(10, 2) over 10 runs"
    [reason] = selection.reasons
    assert reason.startswith(f"{chosen.agent_id}: best score; sampled ") and posterior in reason


@sqlite_only
async def test_the_selector_is_reproducible_with_a_seed(make_lab: Any) -> None:
    lab = await triage_lab(make_lab)
    runs = []
    for brain in (lab.build(rng=random.Random(5)), lab.build(rng=random.Random(5))):
        submission = Submission(task_type="triage", submitted_at=START)
        runs.append([(await brain.assess(submission)).selection.team for _ in range(40)])
    assert runs[0] == runs[1]
    assert set(runs[0]) == {("alpha",), ("beta",)}


@sqlite_only
async def test_report_quality_is_the_reward(make_lab: Any) -> None:
    lab: Lab = await make_lab(rng=random.Random(11))
    add_team(lab.registry, "triage", {"alpha": ["a"], "beta": ["b"]}, default=["alpha"])
    # Both always succeed; beta's reports are much better.
    for _ in range(8):
        await lab.run("triage", agents=["alpha"], quality=0.3)
        await lab.run("triage", agents=["beta"], quality=0.95)
    teams = await draw_teams(lab)
    assert teams[("beta",)] > 0.8 * DRAWS


async def test_the_load_penalty_steers_away_from_a_busy_agent(make_lab: Any) -> None:
    lab = await triage_lab(make_lab, rng=random.Random(99))
    idle = await draw_teams(lab)
    assert idle[("beta",)] > 0.8 * DRAWS
    # Six steps of beta are running (on any worker): 0.6 off its score.
    for _ in range(6):
        task, _ = await lab.submit("triage", agents=["beta"])
        await lab.db.write(
            functools.partial(
                task_store.set_step_fields, task_id=task.id, step_id="beta", status=StepStatus.RUNNING
            )
        )
    busy = await draw_teams(lab)
    assert busy[("alpha",)] > 0.8 * DRAWS
    selection = (await lab.intelligence.assess(Submission(task_type="triage", submitted_at=START))).selection
    scores = {s.agent_id: s for s in selection.candidates}
    assert scores["beta"].load == 6 and scores["alpha"].load == 0
    assert scores["beta"].score == pytest.approx(scores["beta"].sample - 0.6, abs=1e-3)


@sqlite_only
async def test_a_required_capability_is_covered_by_the_team(make_lab: Any) -> None:
    lab = await triage_lab(make_lab, rng=random.Random(3))
    # beta wins most draws, but only alpha offers `a`.
    teams = await draw_teams(lab, required=["a"], draws=50)
    assert teams == Counter({("alpha",): 50})
    selection = (
        await lab.intelligence.assess(
            Submission(task_type="triage", submitted_at=START, required_capabilities=("a", "a"))
        )
    ).selection
    assert selection.required_capabilities == ("a",)
    [alpha] = [s for s in selection.candidates if s.chosen]
    assert alpha.agent_id == "alpha" and alpha.reason == "best score among agents offering a"
    assert not next(s for s in selection.candidates if s.agent_id == "beta").chosen


@sqlite_only
async def test_capabilities_are_covered_in_larger_teams(make_lab: Any) -> None:
    lab: Lab = await make_lab(rng=random.Random(8))
    add_team(
        lab.registry,
        "triage",
        {"p": ["x"], "q": ["y"], "r": ["z"], "s": ["x"]},
        default=["p", "q"],
    )
    for _ in range(8):
        await lab.run("triage", agents=["p", "q"])
        await lab.run("triage", agents=["r"], status=TaskStatus.FAILED)
    for _ in range(50):
        selection = (
            await lab.intelligence.assess(
                Submission(task_type="triage", submitted_at=START, required_capabilities=("z",))
            )
        ).selection
        assert len(selection.team) == 2 and "r" in selection.team
        assert {s.agent_id for s in selection.candidates} == {"p", "q", "r", "s"}


async def test_the_selection_is_stored_with_the_plan(make_lab: Any) -> None:
    lab = await triage_lab(make_lab, rng=random.Random(1))
    task, assessment = await lab.submit("triage", required=["shared"])
    stored = await lab.db.read(lambda conn: task_store.get_task(conn, task.id))
    assert stored is not None and stored.plan is not None
    assert stored.plan.selection == assessment.selection
    assert stored.plan.selection.strategy == "thompson"
    assert stored.plan.selection.required_capabilities == ("shared",)
    assert stored.plan.reasons == assessment.selection.reasons and stored.plan.reasons
    assert [s.agent_id for s in stored.plan.steps] == [*assessment.selection.team, "reporter"]
    assert stored.agents == assessment.selection.team
