"""Terminal rendering: live step progress and the report."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from orchestrion.client import OrchestrionClient

_STYLE = {
    "succeeded": "green",
    "failed": "red",
    "running": "yellow",
    "cancelled": "magenta",
    "skipped": "dim",
    "pending": "dim",
    "partial": "yellow",
    "queued": "cyan",
}
_SEVERITY = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}
_FINAL = {"task.completed", "task.failed", "task.cancelled"}


def _steps_view(task: dict[str, Any], steps: dict[str, dict[str, Any]], status: str) -> Group:
    table = Table("step", "agent", "status", "attempt", "detail", title=f"{task['title']} [{status}]")
    for step_id, state in steps.items():
        style = _STYLE.get(state["status"], "")
        table.add_row(
            step_id,
            state["agent_id"],
            Text(state["status"], style=style),
            str(state.get("attempt", "")),
            state.get("detail", ""),
        )
    return Group(table)


def follow_task(client: OrchestrionClient, task: dict[str, Any], console: Console) -> dict[str, Any]:
    """Show each step's state live from the task's event stream; return the final task."""
    steps = {
        s["id"]: {"agent_id": s["agent_id"], "status": s["status"]}
        for s in (task.get("plan") or {}).get("steps", [])
    }
    status = task["status"]
    console.print(
        f"task {task['id']} ({task['task_type']}), agents: {', '.join(task['agents'])}", highlight=False
    )
    print_prediction(task, console)
    with Live(
        _steps_view(task, steps, status), console=console, refresh_per_second=8, transient=False
    ) as live:
        for event in client.stream_events(task["id"]):
            data = event.get("data", {})
            step = steps.get(data.get("step_id", ""))
            kind = event["type"]
            if step is not None:
                if kind == "step.started":
                    step.update(status="running", attempt=data.get("attempt"), detail="")
                elif kind == "step.completed":
                    step.update(
                        status="succeeded",
                        detail=f"{data.get('findings', 0)} findings, {data.get('evidence', 0)} evidence",
                    )
                elif kind == "step.failed":
                    step.update(
                        status="skipped" if data.get("skipped") else "failed", detail=data.get("error") or ""
                    )
                elif kind == "step.retrying":
                    step.update(detail=f"retrying: {data.get('error', '')}")
                elif kind == "tool.called":
                    step.update(detail=f"{data.get('tool')} ({data.get('evidence', 0)} observations)")
            elif kind == "task.started":
                status = "running"
            elif kind in _FINAL:
                status = data.get("status", kind.split(".")[1])
            live.update(_steps_view(task, steps, status))
            if kind in _FINAL:
                break
    return client.get_task(task["id"])


def print_task(task: dict[str, Any], console: Console) -> None:
    """A task's header and plan."""
    console.print(f"[bold]{task['title']}[/bold]  {task['id']}")
    console.print(
        f"type {task['task_type']}  status [{_STYLE.get(task['status'], '')}]{task['status']}[/]  "
        f"agents {', '.join(task['agents'])}"
    )
    if task.get("error"):
        console.print(f"error: {task['error']}", markup=False)
    print_prediction(task, console)


def print_prediction(task: dict[str, Any], console: Console) -> None:
    """The prediction made at submission, with its risk factors and suggestions."""
    prediction = task.get("prediction")
    if prediction:
        model = prediction.get("model", "prior")
        if prediction.get("model_version") is not None:
            model += f" v{prediction['model_version']}"
        console.print(
            f"predicted ({model}): success {prediction['success_probability']:.0%}, "
            f"~{prediction['duration_p50_seconds']:.0f}s (p90 {prediction['duration_p90_seconds']:.0f}s), "
            f"confidence {prediction['confidence']:.0%}",
            markup=False,
        )
        for risk in prediction.get("risk_factors", []):
            console.print(f"  risk: {risk['message']}", markup=False, highlight=False)
        for tip in prediction.get("suggestions", []):
            console.print(f"  suggestion: {tip}", markup=False, highlight=False)


def print_report(result: dict[str, Any], console: Console) -> None:
    """The aggregated report."""
    quality = result["quality"]
    console.rule("report")
    console.print(result["summary"], markup=False, highlight=False)
    console.print(
        f"quality {quality['overall']:.2f} (coverage {quality['coverage']:.2f}, grounding "
        f"{quality['grounding']:.2f}, agreement {quality['agreement']:.2f}, completion "
        f"{quality['completion']:.2f})"
    )
    usage = result.get("usage", {}).get("total")
    if usage and usage["calls"]:
        line = (
            f"LLM: {usage['calls']} call(s), {usage['input_tokens']} tokens in, "
            f"{usage['output_tokens']} out, ${usage['cost_usd']:.4f}"
        )
        if usage["failed_calls"] or usage["fallback_calls"]:
            line += f" ({usage['failed_calls']} failed, {usage['fallback_calls']} served by a fallback)"
        console.print(line, markup=False, highlight=False)
    if result["findings"]:
        table = Table("severity", "finding", "agent", "evidence")
        evidence = {e["id"]: e for e in result.get("evidence", [])}
        for f in result["findings"][:50]:
            where = ", ".join(evidence[i]["location"] or i for i in f["evidence_ids"][:2] if i in evidence)
            table.add_row(
                Text(f["severity"], style=_SEVERITY.get(f["severity"], "")),
                f["title"],
                f["agent_id"],
                where or ("ungrounded" if not f["grounded"] else ""),
            )
        console.print(table)
    if result["remediation"]:
        console.print("[bold]Remediation[/bold]")
        for i, item in enumerate(result["remediation"][:10], 1):
            console.print(f" {i}. {item}", markup=False, highlight=False)


def tasks_table(tasks: list[dict[str, Any]]) -> Table:
    """Tasks as a table."""
    table = Table("id", "type", "status", "title", "created")
    for t in tasks:
        table.add_row(
            t["id"],
            t["task_type"],
            Text(t["status"], style=_STYLE.get(t["status"], "")),
            t["title"],
            t["created_at"][:19],
        )
    return table
