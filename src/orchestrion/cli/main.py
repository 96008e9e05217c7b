"""`orchestrion`: serve, run, tasks, agents, users, db.

Exit codes: 0 success, 1 a task that did not succeed (or a server error), 2 bad input.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError as PydanticValidationError
from rich.console import Console

from orchestrion.cli.render import follow_task, print_report, print_task, tasks_table
from orchestrion.client import OrchestrionAPIError, OrchestrionClient
from orchestrion.exceptions import ConfigurationError
from orchestrion.settings import ClientSettings, Settings

app = typer.Typer(
    help="Orchestrion: a self-hosted multi-agent task server.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
tasks_app = typer.Typer(help="List, show and cancel tasks.", no_args_is_help=True)
users_app = typer.Typer(help="Manage users (direct database access).", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")
app.add_typer(users_app, name="users")
app.add_typer(db_app, name="db")

console = Console()
err = Console(stderr=True)

UrlOption = Annotated[str | None, typer.Option("--url", help="Server URL (env ORCHESTRION_URL).")]
KeyOption = Annotated[str | None, typer.Option("--api-key", help="API key (env ORCHESTRION_API_KEY).")]


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one line to stderr and exit."""
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def load_settings(**overrides: object) -> Settings:
    """Server settings, exiting with 2 on invalid configuration."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        fail(f"invalid setting {'.'.join(str(p) for p in first['loc'])}: {first['msg']}")


def make_client(url: str | None, api_key: str | None) -> OrchestrionClient:
    """A client from options, environment or the client config file."""
    base, key = ClientSettings().resolved(url=url, api_key=api_key)
    if not key:
        fail("no API key: pass --api-key or set ORCHESTRION_API_KEY")
    return OrchestrionClient(base, key)


def api_error(exc: OrchestrionAPIError) -> NoReturn:
    """Exit 2 for the caller's mistakes, 1 for the rest."""
    fail(exc.message, 2 if 400 <= exc.status < 500 else 1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="Serve the API only.")] = False,
) -> None:
    """Migrate the database and serve the API, events, metrics and (unless --no-worker) a worker."""
    import uvicorn

    from orchestrion.api.app import create_app
    from orchestrion.runtime import prepare_database

    settings = load_settings(host=host, port=port, embedded_worker=False if no_worker else None)
    try:
        # Built first, so a bad LLM configuration is refused before anything is written.
        application = create_app(settings)
    except ConfigurationError as exc:
        fail(f"invalid configuration: {exc.message}", 2)
    key = prepare_database(settings)
    if key:
        console.print("Created the first admin. Its API key is shown once; store it now:", highlight=False)
        console.print(f"  {key}", markup=False, highlight=False)
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


@app.command()
def run(
    task_type: Annotated[str, typer.Option("--type", "-t", help="Task type (see `orchestrion agents`).")],
    target: Annotated[str | None, typer.Option(help="What the task is about (host, URL, name).")] = None,
    file: Annotated[
        list[Path] | None, typer.Option("--file", "-f", help="Upload a file (repeatable).")
    ] = None,
    path: Annotated[
        list[str] | None, typer.Option("--path", help="A server path under the workspace roots.")
    ] = None,
    agent: Annotated[
        list[str] | None, typer.Option("--agent", "-a", help="Use this agent (repeatable).")
    ] = None,
    title: Annotated[str | None, typer.Option(help="Task title.")] = None,
    priority: Annotated[int, typer.Option(min=1, max=10)] = 5,
    deadline: Annotated[float | None, typer.Option(help="Deadline in seconds.")] = None,
    url: UrlOption = None,
    api_key: KeyOption = None,
) -> None:
    """Submit a task, follow its steps live and print the report (exit 0 succeeded, 1 not, 2 bad input)."""
    files = []
    for item in file or []:
        if not item.is_file():
            fail(f"--file {item}: no such file")
        try:
            files.append({"name": item.name, "content": item.read_text(encoding="utf-8")})
        except UnicodeDecodeError:
            fail(f"--file {item}: not a UTF-8 text file")
    client = make_client(url, api_key)
    try:
        task = client.create_task(
            title=title or f"{task_type} {target or ', '.join(f['name'] for f in files) or ''}".strip(),
            task_type=task_type,
            target=target,
            files=files,
            paths=path or [],
            priority=priority,
            agents=agent or None,
            deadline_seconds=deadline,
        )
        final = follow_task(client, task, console)
        if final["status"] in ("succeeded", "partial"):
            print_report(client.result(task["id"]), console)
        elif final.get("error"):
            err.print(f"task {final['status']}: {final['error']}", markup=False)
    except OrchestrionAPIError as exc:
        api_error(exc)
    finally:
        client.close()
    raise typer.Exit(0 if final["status"] == "succeeded" else 1)


@tasks_app.command("list")
def tasks_list(
    status: Annotated[str | None, typer.Option(help="Filter by status.")] = None,
    task_type: Annotated[str | None, typer.Option("--type", help="Filter by task type.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 20,
    url: UrlOption = None,
    api_key: KeyOption = None,
) -> None:
    """List tasks, newest first."""
    with make_client(url, api_key) as client:
        try:
            page = client.list_tasks(status=status, task_type=task_type, limit=limit)
        except OrchestrionAPIError as exc:
            api_error(exc)
    console.print(tasks_table(page["data"]))


@tasks_app.command("show")
def tasks_show(task_id: str, url: UrlOption = None, api_key: KeyOption = None) -> None:
    """Show a task, and its report when it has one."""
    with make_client(url, api_key) as client:
        try:
            task = client.get_task(task_id)
            print_task(task, console)
            if task["status"] in ("succeeded", "partial"):
                print_report(client.result(task_id), console)
        except OrchestrionAPIError as exc:
            api_error(exc)


@tasks_app.command("cancel")
def tasks_cancel(task_id: str, url: UrlOption = None, api_key: KeyOption = None) -> None:
    """Cancel a task."""
    with make_client(url, api_key) as client:
        try:
            task = client.cancel_task(task_id)
        except OrchestrionAPIError as exc:
            api_error(exc)
    console.print(f"{task['id']}: {task['status']}", highlight=False)


@app.command()
def agents(url: UrlOption = None, api_key: KeyOption = None) -> None:
    """List agents and task types."""
    from rich.table import Table

    with make_client(url, api_key) as client:
        try:
            agent_list, types = client.agents(), client.task_types()
        except OrchestrionAPIError as exc:
            api_error(exc)
    table = Table("agent", "status", "runs", "success", "task types", "tools")
    for a in agent_list:
        metrics = a.get("metrics") or {}
        rate = metrics.get("success_rate")
        table.add_row(
            a["id"],
            str(metrics.get("status", "-")),
            str(metrics.get("runs", 0)),
            "-" if rate is None else f"{rate:.0%}",
            ", ".join(a["task_types"]) or "(every team)",
            ", ".join(a["tools"]),
        )
    console.print(table)
    types_table = Table("task type", "default team", "description")
    for t in types:
        types_table.add_row(t["id"], ", ".join(t["default_agents"]), t["description"])
    console.print(types_table)


@app.command()
def status(url: UrlOption = None, api_key: KeyOption = None) -> None:
    """The server's health with its reasons, agents, tasks, recent performance and firing alerts."""
    from rich.table import Table

    with make_client(url, api_key) as client:
        try:
            data, firing = client.system(), client.alerts(state="firing")
        except OrchestrionAPIError as exc:
            api_error(exc)
    health = data["health"]
    console.print(f"health: {health['status']}", markup=False, highlight=False)
    for reason in health["reasons"]:
        console.print(f"  - {reason}", markup=False, highlight=False)
    agents, tasks, perf = data["agents"], data["tasks"], data["performance"]
    rate = perf["success_rate"]
    console.print(
        f"agents: {agents['total']} ({agents['active']} active, {agents['processing']} processing); "
        f"tasks: {', '.join(f'{k} {v}' for k, v in sorted(tasks['by_status'].items())) or 'none'}; "
        f"recent success rate: {'-' if rate is None else f'{rate:.0%}'}",
        markup=False,
        highlight=False,
    )
    if firing["data"]:
        table = Table("alert", "severity", "value", "threshold", "since", "message")
        for alert in firing["data"]:
            table.add_row(
                alert["rule"],
                alert["severity"],
                f"{alert['value']:g}",
                f"{alert['threshold']:g}",
                alert["fired_at"][:19],
                alert["message"],
            )
        console.print(table)
    else:
        console.print("no alerts firing")


@app.command()
def models(
    url: UrlOption = None,
    api_key: KeyOption = None,
    retrain: Annotated[bool, typer.Option("--retrain", help="Train a candidate now (admins).")] = False,
) -> None:
    """Outcome models: which one serves predictions, and every candidate with its holdout scores."""
    from rich.table import Table

    with make_client(url, api_key) as client:
        try:
            if retrain:
                record = client.retrain()
                console.print(f"v{record['version']}: {record['decision']}", markup=False, highlight=False)
            data = client.models()
        except OrchestrionAPIError as exc:
            api_error(exc)
    serving = data["serving"] + (f" v{data['serving_version']}" if data["serving_version"] else "")
    console.print(
        f"serving: {serving}; {data['training_rows']} finished tasks to learn from "
        f"(training needs {data['min_train_samples']}); retrains every {data['retrain_every']} outcomes",
        markup=False,
    )
    table = Table(
        "version", "trained", "samples", "holdout", "Brier", "prior Brier", "duration MAE s", "decision"
    )
    for m in data["models"]:
        scores, prior = m["metrics"].get("candidate", {}), m["metrics"].get("prior", {})
        table.add_row(
            f"v{m['version']}" + (" *" if m["promoted"] else ""),
            m["trained_at"][:19],
            str(m["sample_count"]),
            str(m["holdout_count"]),
            f"{scores.get('brier', float('nan')):.4f}",
            f"{prior.get('brier', float('nan')):.4f}",
            f"{scores.get('duration_mae', float('nan')):.1f}",
            m["decision"],
        )
    console.print(table)


@app.command()
def providers(url: UrlOption = None, api_key: KeyOption = None) -> None:
    """LLM routes and deployments: circuit state, latency, error rate, tokens and cost to date."""
    from rich.table import Table

    with make_client(url, api_key) as client:
        try:
            data = client.providers()
        except OrchestrionAPIError as exc:
            api_error(exc)
    routes = Table("route", "deployments, in fallback order")
    for name, chain in data["routes"].items():
        routes.add_row(name, " > ".join(chain))
    console.print(routes)
    table = Table("deployment", "model", "circuit", "calls", "errors", "p50 s", "p95 s", "tokens", "cost $")
    for d in data["deployments"]:
        usage = d["usage"]
        p50, p95 = usage["latency_p50_seconds"], usage["latency_p95_seconds"]
        table.add_row(
            d["name"],
            f"{d['provider']}:{d['model']}",
            d["circuit"]["state"],
            str(usage["calls"]),
            str(usage["errors"]),
            "-" if p50 is None else f"{p50:.3f}",
            "-" if p95 is None else f"{p95:.3f}",
            str(usage["input_tokens"] + usage["output_tokens"]),
            f"{usage['cost_usd']:.4f}" if d["price"] is not None else "unpriced",
        )
    console.print(table)


@users_app.command("create")
def users_create(
    name: str,
    role: Annotated[str, typer.Option(help="admin, operator or viewer.")] = "operator",
    password: Annotated[bool, typer.Option("--password", help="Also set a password (prompted).")] = False,
) -> None:
    """Create a user in the configured database and print its API key (shown once)."""
    from orchestrion.security import ROLES

    if role not in ROLES:
        fail(f"--role {role!r} is not one of: {', '.join(ROLES)}")
    secret = typer.prompt("Password", hide_input=True, confirmation_prompt=True) if password else None
    if secret is not None and len(secret) < 8:
        fail("password must be at least 8 characters")
    settings = load_settings()
    from orchestrion.store.migrate import upgrade_database

    upgrade_database(settings.resolved_database_url)
    try:
        key = asyncio.run(_create_user(settings, name, role, secret))
    except ValueError as exc:
        fail(str(exc))
    console.print(key, markup=False, highlight=False)


async def _create_user(settings: Settings, name: str, role: str, password: str | None) -> str:
    from orchestrion.runtime import Runtime
    from orchestrion.store import users as user_store

    runtime = Runtime.create(settings, routes={})
    try:
        if await runtime.db.read(lambda conn: user_store.get_user_by_name(conn, name)) is not None:
            raise ValueError(f"user {name!r} already exists")
        _, key = await runtime.create_user(name=name, role=role, password=password)
        return key
    finally:
        await runtime.stop()


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default head)."""
    from orchestrion.store.migrate import upgrade_database

    settings = load_settings()
    upgrade_database(settings.resolved_database_url, revision)
    console.print(f"database at {revision}", highlight=False)


def main() -> None:
    """Entry point; usage errors exit 2 with one line."""
    from typer.exceptions import TyperException

    try:
        code = app(standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except TyperException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            sys.exit(0)  # the help was already printed
        format_message = getattr(exc, "format_message", None)
        message = format_message() if callable(format_message) else str(exc)
        err.print(f"error: {message}", markup=False, highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
