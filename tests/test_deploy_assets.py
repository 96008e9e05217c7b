"""The deploy assets only name metrics the server emits.

`deploy/prometheus/alerts.yml` and `deploy/grafana/orchestrion.json` are checked against a real
server's `/metrics` after a task ran to completion: every metric named in a PromQL expression must
be exposed (a family with HELP/TYPE lines and no samples yet counts; `_bucket`, `_sum` and `_count`
count for histograms and summaries only).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.api.test_tasks_api import task_body, wait_status
from tests.conftest import LiveServer

ROOT = Path(__file__).resolve().parents[1]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "orchestrion.json"

# Series Prometheus makes up itself for every target rather than scraping them.
SYNTHETIC = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})

_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or"}
    | {"unless", "atan2", "inf", "nan"}
)
_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_LABEL_VALUES = re.compile(r"\blabel_values\(\s*([^,()]*?)\s*(?:,\s*\w+\s*)?\)")
_GRAFANA_VARIABLE = re.compile(r"\$\{?\w+\}?")
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.:])([A-Za-z_:][\w:]*)(\s*\()?")
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def promql_metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (Grafana's `label_values(...)` and `$variables` too)."""
    text = _STRING.sub('""', expr)
    text = _LABEL_VALUES.sub(r"\1", text)
    text = _GRAFANA_VARIABLE.sub(" ", text)
    for pattern in (_MATCHERS, _RANGES, _GROUPING):
        text = pattern.sub(" ", text)
    return {
        match.group(1)
        for match in _IDENTIFIER.finditer(text)
        # A name followed by `(` is a function or an aggregation, not a metric.
        if match.group(2) is None and match.group(1).lower() not in _KEYWORDS
    }


class Exposition:
    """What a `/metrics` scrape exposes: family types (from TYPE lines) and sample names."""

    def __init__(self, text: str) -> None:
        self.types: dict[str, str] = {}
        self.samples: set[str] = set()
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(maxsplit=3)
                self.types[name] = kind
            elif line.startswith("# HELP "):
                self.types.setdefault(line.split(maxsplit=3)[2], "untyped")
            elif line and not line.startswith("#"):
                self.samples.add(re.split(r"[{\s]", line, maxsplit=1)[0])

    def emits(self, name: str) -> bool:
        if name in self.types or name in self.samples:
            return True
        for suffix in _HISTOGRAM_SUFFIXES:
            base = name.removesuffix(suffix)
            if base != name and self.types.get(base) in ("histogram", "summary"):
                return True
        return False


def _expressions(node: Any) -> Iterator[str]:
    """Every `expr` string, and every templating query, anywhere in a rules file or dashboard."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            elif key in ("query", "definition") and isinstance(value, str) and "(" in value:
                yield value
            else:
                yield from _expressions(value)
    elif isinstance(node, list):
        for item in node:
            yield from _expressions(item)


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def referenced_names(document: Any) -> set[str]:
    return {name for expr in _expressions(document) for name in promql_metric_names(expr)}


# -- the parser -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'sum by (task_type) (rate(orchestrion_tasks_total{status="failed", x=~"a|b"}[5m]))'
            " / sum(rate(orchestrion_tasks_total[5m])) > 0.25",
            {"orchestrion_tasks_total"},
        ),
        (
            "histogram_quantile(0.95, sum by (le, task_type) (rate(a_seconds_bucket[$__rate_interval])))",
            {"a_seconds_bucket"},
        ),
        (
            "sum(rate(x_sum[1h])) by (model) / on (model) group_left sum(rate(x_count[1h]))",
            {"x_sum", "x_count"},
        ),
        (
            'process_open_fds{job="o"} / process_max_fds offset 5m > 2e9 and bool up',
            {"process_open_fds"}
            | {
                "process_max_fds",
                "up",
            },
        ),
        ("label_values(orchestrion_tasks_submitted_total, task_type)", {"orchestrion_tasks_submitted_total"}),
        ('sum(m{handler=~"/api/v1/{task_id}"}) without (instance)', {"m"}),
    ],
)
def test_promql_names_are_found_without_functions_labels_or_keywords(expr: str, names: set[str]) -> None:
    assert promql_metric_names(expr) == names


def test_the_exposition_counts_histogram_suffixes_for_histograms_only() -> None:
    exposition = Exposition(
        "# HELP a_seconds Time.\n# TYPE a_seconds histogram\n"
        "# HELP b_total Count.\n# TYPE b_total counter\n"
        "# HELP c Level.\n# TYPE c gauge\nc 1.0\n"
    )
    assert exposition.emits("a_seconds_bucket") and exposition.emits("a_seconds_count")
    assert exposition.emits("b_total")  # HELP/TYPE without samples: emitted
    assert not exposition.emits("c_count") and not exposition.emits("b_total_bucket")
    assert not exposition.emits("d")


# -- the assets -----------------------------------------------------------------------------------


def test_alert_rules_are_complete() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert rule["expr"].strip() and rule["labels"]["severity"] in ("info", "warning", "critical"), rule
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule
    covered = referenced_names(yaml.safe_load(ALERTS.read_text()))
    # One alert at least for each area the rules promise: failures, latency, queue, LLM, predictions,
    # agents, process, HTTP, WebSocket and host.
    for name in (
        "orchestrion_tasks_total",
        "orchestrion_task_duration_seconds_bucket",
        "orchestrion_queue_backlog",
        "orchestrion_queue_wait_seconds_bucket",
        "orchestrion_llm_circuit_state",
        "orchestrion_llm_calls_total",
        "orchestrion_llm_cost_usd_total",
        "orchestrion_prediction_squared_error_sum",
        "orchestrion_agent_success_ratio",
        "process_resident_memory_bytes",
        "orchestrion_http_requests_total",
        "orchestrion_ws_dropped_clients_total",
        "orchestrion_system_cpu_percent",
        "orchestrion_system_memory_percent",
        "orchestrion_system_disk_percent",
    ):
        assert name in covered, name


def test_the_dashboard_is_importable_with_a_prometheus_datasource_variable() -> None:
    board = dashboard()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = board["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert ref_ids and len(ref_ids) == len(set(ref_ids)), panel["title"]
        assert all(target["expr"].strip() for target in panel["targets"]), panel["title"]


async def test_every_metric_the_assets_name_is_emitted_by_the_server(live_server: LiveServer) -> None:
    async with live_server.client() as client:
        task = (await client.post("/api/v1/tasks", json=task_body())).json()
        assert (await wait_status(client, task["id"]))["status"] == "succeeded"
        response = await client.get("/metrics")
    assert response.status_code == 200
    exposition = Exposition(response.text)

    missing = {
        path.relative_to(ROOT).as_posix(): sorted(
            name
            for name in referenced_names(document)
            if name not in SYNTHETIC and not exposition.emits(name)
        )
        for path, document in (
            (ALERTS, yaml.safe_load(ALERTS.read_text())),
            (DASHBOARD, dashboard()),
        )
    }
    assert missing == {ALERTS.relative_to(ROOT).as_posix(): [], DASHBOARD.relative_to(ROOT).as_posix(): []}
    # The parser found the expressions at all (a broken one would make the check above vacuous).
    assert "orchestrion_task_duration_seconds_bucket" in referenced_names(dashboard())
    assert exposition.samples >= {
        "orchestrion_task_duration_seconds_bucket",
        "orchestrion_queue_wait_seconds_sum",
    }
