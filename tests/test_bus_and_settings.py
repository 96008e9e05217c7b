"""The local event bus and settings parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrion.bus.local import LocalEventBus
from orchestrion.domain.events import Event
from orchestrion.domain.tasks import utcnow
from orchestrion.settings import ClientSettings, Settings


def _event(task: str, seq: int) -> Event:
    return Event(task_id=task, seq=seq, type="task.progress", created_at=utcnow())


async def test_subscribers_get_their_task_and_wildcard_gets_all() -> None:
    bus = LocalEventBus()
    one, every = bus.subscribe("a"), bus.subscribe(None)
    await bus.publish([_event("a", 1), _event("b", 1)])
    first = await one.get()
    assert first is not None and (first.task_id, first.seq) == ("a", 1)
    received = [await every.get() for _ in range(2)]
    assert [e.task_id for e in received if e is not None] == ["a", "b"]
    bus.unsubscribe(one)
    assert await one.get() is None
    await bus.aclose()


async def test_slow_subscriber_is_cut_off_not_waited_for() -> None:
    bus = LocalEventBus()
    slow = bus.subscribe("a", maxsize=2)
    await bus.publish([_event("a", i) for i in range(1, 6)])
    assert slow.overflowed and slow.closed
    assert bus.subscriber_count() == 0
    drained = [await slow.get(), await slow.get()]
    assert [e.seq for e in drained if e is not None] == [1, 2]
    assert await slow.get() is None


def test_list_settings_accept_commas_and_json(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ORCHESTRION_WORKSPACE_ROOTS", f"{tmp_path}/a, {tmp_path}/b")
    monkeypatch.setenv("ORCHESTRION_TOOL_ALLOW_TARGETS", '["127.0.0.1"]')
    settings = Settings(home=tmp_path)
    assert settings.workspace_roots == [tmp_path / "a", tmp_path / "b"]
    assert settings.tool_allow_targets == ["127.0.0.1"]
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{(tmp_path / 'orchestrion.db').resolve()}"


def test_client_settings_prefer_options_then_env_then_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "client.yaml"
    config.write_text("url: http://file:1\napi_key: orc_file\n")
    monkeypatch.setenv("ORCHESTRION_CLIENT_CONFIG", str(config))
    monkeypatch.delenv("ORCHESTRION_URL", raising=False)
    monkeypatch.delenv("ORCHESTRION_API_KEY", raising=False)
    assert ClientSettings().resolved(url=None, api_key=None) == ("http://file:1", "orc_file")
    monkeypatch.setenv("ORCHESTRION_API_KEY", "orc_env")
    assert ClientSettings().resolved(url="http://opt:2/", api_key=None) == ("http://opt:2", "orc_env")
