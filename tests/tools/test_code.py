from __future__ import annotations

from orchestrion.domain.findings import Severity
from orchestrion.tools.base import InputFile, ToolContext, ToolOutput
from orchestrion.tools.code import BanditTool, PythonMetricsTool
from orchestrion.tools.registry import build_builtin_tools


def _branchy(name: str, branches: int) -> str:
    """A function with cyclomatic complexity `branches + 1`."""
    lines = [f"def {name}(x):"]
    lines += [f"    if x == {i}:\n        return {i}" for i in range(branches)]
    lines.append("    return -1\n")
    return "\n".join(lines)


SIMPLE = "import os\n\n\nclass Greeter:\n    def greet(self, who):\n        return f'hi {who}'\n"
COMPLEX = _branchy("dispatch", 24) + "\n\n" + _branchy("route", 12) + "\n\n" + "def tiny():\n    return 1\n"
PASSWORD = "hunter2-very-secret"
INSECURE = f"""import subprocess


def run(cmd):
    pass_phrase = "{PASSWORD}"
    subprocess.call(cmd, shell=True)
    return eval(cmd), pass_phrase
"""


def _ctx(*files: tuple[str, str]) -> ToolContext:
    return ToolContext(task_id="t1", step_id="s1", files=[InputFile(name=n, content=c) for n, c in files])


async def _metrics(*files: tuple[str, str]) -> ToolOutput:
    output, _ = await PythonMetricsTool().run({}, _ctx(*files))
    return output


async def _bandit(*files: tuple[str, str]) -> ToolOutput:
    output, _ = await BanditTool().run({}, _ctx(*files))
    return output


async def test_metrics_summarise_each_file_with_ast_counts() -> None:
    output = await _metrics(("greet.py", SIMPLE), ("notes.txt", "not python"))

    [observation] = output.observations
    assert observation.summary == "greet.py: 4 SLOC, max complexity 1 (A), MI 100.0"
    assert observation.location == "greet.py"
    assert observation.data["functions"] == 1
    assert observation.data["classes"] == 1
    assert observation.data["imports"] == 1
    assert observation.data["max_nesting"] == 2
    assert output.findings == ()
    assert output.data["skipped_non_python"] == 1
    assert output.data["files"] == 1


async def test_metrics_flag_complex_functions_by_rank() -> None:
    output = await _metrics(("svc/handlers.py", COMPLEX))

    by_location = {o.location: o for o in output.observations}
    assert by_location["svc/handlers.py:1"].data["complexity"] == 25
    assert by_location["svc/handlers.py:1"].data["rank"] == "D"
    assert set(by_location) == {"svc/handlers.py", "svc/handlers.py:1", "svc/handlers.py:53"}
    titles = {f.title: f.severity for f in output.findings}
    assert titles == {
        "High cyclomatic complexity in dispatch (svc/handlers.py:1)": Severity.MEDIUM,
        "High cyclomatic complexity in route (svc/handlers.py:53)": Severity.LOW,
    }
    for finding in output.findings:
        assert f"({output.observations[finding.observation_indexes[0]].location})" in finding.title


async def test_metrics_data_totals_and_worst_functions() -> None:
    output = await _metrics(("a.py", COMPLEX), ("b.py", SIMPLE))

    assert output.data["functions"] == 4
    assert output.data["average_complexity"] == round((25 + 13 + 1 + 1) / 4, 2)
    assert [w["function"] for w in output.data["worst_functions"]] == [
        "dispatch",
        "route",
        "tiny",
        "Greeter.greet",
    ]


async def test_metrics_report_syntax_errors_as_low_findings() -> None:
    output = await _metrics(("broken.py", "def oops(:\n    pass\n"), ("ok.py", SIMPLE))

    assert output.observations[0].summary == "broken.py: could not parse (SyntaxError at line 1)"
    [finding] = output.findings
    assert finding.title == "Syntax error in broken.py"
    assert finding.severity is Severity.LOW
    assert finding.observation_indexes == (0,)
    assert output.data["parse_errors"] == 1
    assert output.data["files"] == 1


async def test_metrics_flag_low_maintainability() -> None:
    body = "\n".join(_branchy(f"f{i}", 30) for i in range(12))

    output = await _metrics(("legacy.py", body))

    low_mi = [f for f in output.findings if f.title.startswith("Low maintainability in legacy.py")]
    assert len(low_mi) == 1
    assert low_mi[0].severity is Severity.MEDIUM


async def test_bandit_reports_shell_eval_and_hardcoded_password() -> None:
    output = await _bandit(("app/run.py", INSECURE))

    by_test = {o.data["test_id"]: o for o in output.observations}
    assert {"B602", "B307", "B105"} <= set(by_test)
    shell = by_test["B602"]
    assert shell.location == "app/run.py:6"
    assert shell.summary == "B602 subprocess_popen_with_shell_equals_true in app/run.py:6 (HIGH/HIGH)"
    assert shell.data["cwe"] == "CWE-78"
    assert "shell=True" in shell.data["code"]
    severities = {f.title.split(":")[0]: f.severity for f in output.findings}
    assert severities["B602"] is Severity.HIGH
    assert severities["B307"] is Severity.MEDIUM
    assert severities["B105"] is Severity.LOW
    shell_finding = next(f for f in output.findings if f.title.startswith("B602"))
    assert shell_finding.title == "B602: subprocess call with shell=True identified, security issue"
    assert "shell=True" in shell_finding.recommendation


async def test_bandit_never_repeats_a_hardcoded_password() -> None:
    output = await _bandit(("app/run.py", INSECURE))

    assert PASSWORD not in repr(output)
    password = next(f for f in output.findings if f.title.startswith("B105"))
    assert password.title == "B105: Possible hardcoded password"
    shell = next(o for o in output.observations if o.data["test_id"] == "B602")
    assert "5     pass_phrase = '<redacted>'" in shell.data["code"]


async def test_bandit_downgrades_low_confidence_and_uses_generic_recommendation() -> None:
    source = "import random\n\nTOKEN = random.random()\n"

    output = await _bandit(("gen.py", source), ("skip.md", "# not python"))

    [finding] = output.findings
    assert finding.title.startswith("B311: ")
    assert finding.severity is Severity.LOW
    assert output.data["skipped_non_python"] == 1
    assert output.data["issues"] == 1


async def test_bandit_skips_files_it_cannot_parse() -> None:
    output = await _bandit(("broken.py", "def (:\n"), ("clean.py", "x = 1\n"))

    assert output.findings == ()
    assert output.data["skipped_by_bandit"] == ["broken.py"]


def test_registry_builds_every_tool_by_name() -> None:
    tools = build_builtin_tools()

    assert {"bandit_scan", "data_profile", "python_metrics", "secret_scan", "log_parse", "test_map"} <= set(
        tools
    )
    assert len(tools) == 32
    assert all(name == tool.name for name, tool in tools.items())
