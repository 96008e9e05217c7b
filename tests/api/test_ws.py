"""`/ws` on a real uvicorn server (127.0.0.1) with real `websockets` clients and a real SQLite file.

Every message a client receives here is checked against docs/websocket.schema.json (`ws_helpers`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import json
import logging
import re
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from websockets.exceptions import ConnectionClosed

from orchestrion.domain.events import Channel, EventType, Notice
from orchestrion.engines.coordinator import Caller, TaskRequest
from orchestrion.engines.status import EngineState, EngineStatus
from orchestrion.monitoring.alerts import alert_json
from orchestrion.providers.breaker import CircuitChange, CircuitState
from orchestrion.realtime.connection import WsConnection
from orchestrion.realtime.hub import WebSocketHub
from orchestrion.realtime.metrics import WsMetrics
from orchestrion.realtime.protocol import CLOSE_TIMEOUT_SECONDS, CloseCode, parse_channel
from orchestrion.runtime import Runtime
from orchestrion.security import create_access_token
from orchestrion.store.alerts import AlertRecord
from orchestrion.store.events import append_events, read_events_after_id
from tests.api.ws_helpers import SCHEMA, SERVER_MESSAGE, WsServer, serve_ws, ws_client

CODE = {
    "name": "app.py",
    "content": "import subprocess\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n",
}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "websocket.md"


@pytest.fixture
def ws_server(tmp_path: Path) -> Iterator[WsServer]:
    with serve_ws(tmp_path) as server:
        yield server


async def new_user(server: WsServer, name: str, role: str = "operator") -> str:
    async with server.http() as admin:
        response = await admin.post("/api/v1/users", json={"name": name, "role": role})
    assert response.status_code == 201, response.text
    return str(response.json()["api_key"])


async def new_task(server: WsServer, key: str | None = None, *, run: bool = False) -> str:
    body = {
        "title": "audit app",
        "task_type": "code_analysis",
        "inputs": {"files": [CODE]},
        "auto_execute": run,
    }
    async with server.http(key) as client:
        response = await client.post("/api/v1/tasks", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def cancel_task(server: WsServer, task_id: str, key: str | None = None) -> None:
    async with server.http(key) as client:
        response = await client.post(f"/api/v1/tasks/{task_id}/cancel")
    assert response.status_code == 200, response.text


def _progress(n: int) -> dict[str, Any]:
    """A `task.progress` payload with the documented fields (and `n`, the writer's counter)."""
    return {"steps_done": 0, "steps_total": 1, "percent": 0.0, "succeeded": 0, "n": n}


class ProgressWriter:
    """Appends `task.progress` events to a task on the server's loop, one transaction at a time.

    It runs until `stop()` (or `limit` events), so a test can be sure events are being written while
    it does something.
    """

    def __init__(self, server: WsServer, task_id: str, *, per_tx: int = 1, pad: int = 0, limit: int = 0):
        self.server, self.task_id, self.per_tx, self.pad, self.limit = server, task_id, per_tx, pad, limit
        self.written = 0
        self._stop = threading.Event()
        self._future: concurrent.futures.Future[int] | None = None

    def start(self) -> None:
        self._future = asyncio.run_coroutine_threadsafe(self._run(), self.server.loop)

    async def stop(self) -> int:
        self._stop.set()
        assert self._future is not None
        return await asyncio.wrap_future(self._future)

    async def _run(self) -> int:
        filler = "0123456789abcdef" * (self.pad // 16)
        while not self._stop.is_set() and not (self.limit and self.written >= self.limit):
            items = [
                ("task.progress", _progress(self.written + i) | {"pad": filler}) for i in range(self.per_tx)
            ]
            await self.server.runtime.db.write(
                functools.partial(append_events, task_id=self.task_id, items=items)
            )
            self.written += len(items)
            await asyncio.sleep(0.001)
        return self.written


# -- authentication -------------------------------------------------------------------------------


async def test_bad_credentials_close_with_4401_and_good_ones_get_welcome(ws_server: WsServer) -> None:
    refusals = [
        ({"query": True}, "orc_wrongwrongwrongwrongwrong", None),
        ({"query": True}, "not-a-jwt", None),
        ({"query": False, "additional_headers": {"Authorization": "Bearer not-a-jwt"}}, "", None),
        ({"query": False}, "", {"type": "subscribe", "channel": "tasks"}),
        ({"query": False}, "", {"type": "auth", "token": "orc_wrongwrongwrongwrongwrong"}),
        ({"query": False}, "", "{not json"),
    ]
    expired = create_access_token(
        user_id="someone", role="admin", secret=ws_server.runtime.jwt_secret, ttl_seconds=-60
    )
    refusals.append(({"query": True}, expired, None))
    for options, key, first in refusals:
        async with ws_client(ws_server, key, welcome=False, **options) as client:
            if first is not None:
                await client.ws.send(first if isinstance(first, str) else json.dumps(first))
            assert await client.closed_code() == CloseCode.UNAUTHORIZED, (options, first)
    assert ws_server.metric("orchestrion_ws_dropped_clients_total", {"reason": "unauthorized"}) == 7

    async with ws_client(ws_server, welcome=False, query=False) as client:
        await client.send(type="auth", token=ws_server.admin_key)
        welcome = await client.expect("welcome")
        assert welcome["role"] == "admin" and welcome["protocol"] == 1
    async with ws_server.http() as http:
        token = (await http.post("/api/v1/auth/token")).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    async with ws_client(ws_server, welcome=False, query=False, additional_headers=headers) as client:
        assert (await client.expect("welcome"))["role"] == "admin"


# -- authorisation --------------------------------------------------------------------------------


async def test_users_receive_only_their_own_task_events_and_admins_all(ws_server: WsServer) -> None:
    alice, bob = await new_user(ws_server, "alice"), await new_user(ws_server, "bob")
    carol = await new_user(ws_server, "carol", "viewer")
    async with (
        ws_client(ws_server, alice) as a,
        ws_client(ws_server, carol) as c,
        ws_client(ws_server) as admin,
    ):
        for client in (a, c, admin):
            await client.send(type="subscribe", channel="tasks")
            assert (await client.expect("subscribed"))["replay"] is False
        bobs_task = await new_task(ws_server, bob)

        # Alice may not follow Bob's task, and cannot tell it from a task that does not exist (and
        # Bob's task.created did not reach her: the error is her next message).
        await a.send(type="subscribe", channel=f"task:{bobs_task}", id="b")
        refused = await a.expect("error")
        assert refused["code"] == "not_found" and refused["id"] == "b"
        await a.send(type="subscribe", channel="task:no-such-task")
        assert (await a.expect("error"))["code"] == "not_found"
        alices_task = await new_task(ws_server, alice)
        await a.send(type="subscribe", channel=f"task:{alices_task}", last_seq=0)
        seen = await a.recv_until(lambda m: m["type"] == "subscribed")

        # Bob's events are published first: had any been routed to Alice, they would come first.
        await cancel_task(ws_server, bobs_task, bob)
        await cancel_task(ws_server, alices_task, alice)
        seen += await a.recv_until(lambda m: m["type"] == "task.cancelled" and m["channel"] == "tasks")
        assert {m["task_id"] for m in seen if "task_id" in m} == {alices_task}
        assert [m["type"] for m in seen if m.get("channel") == "tasks"] == ["task.created", "task.cancelled"]

        everything = await admin.recv_until(
            lambda m: m["type"] == "task.cancelled" and m["task_id"] == alices_task
        )
        assert {m["task_id"] for m in everything} == {alices_task, bobs_task}

        # Carol (a viewer with no task of her own) got nothing but the answer to her ping.
        await c.send(type="ping", id=7)
        assert await c.expect("pong") == {"type": "pong", "id": 7}


# -- resume ---------------------------------------------------------------------------------------


async def test_resume_after_disconnect_replays_the_gap_without_loss_or_duplicate(ws_server: WsServer) -> None:
    task_id = await new_task(ws_server)  # not run: its only events are the ones written here
    channel = f"task:{task_id}"
    writer = ProgressWriter(ws_server, task_id)
    writer.start()

    # First connection: follows the task from its start on both channels, then drops mid-stream.
    first: dict[str, list[dict[str, Any]]] = {channel: [], "tasks": []}
    async with ws_client(ws_server) as client:
        await client.send(type="subscribe", channel=channel, last_seq=0)
        await client.send(type="subscribe", channel="tasks", last_event_id=0)
        while min(len(first[channel]), len(first["tasks"])) < 100:
            message = await client.recv()
            if "seq" in message and message["type"] != "synced":
                first[message["channel"]].append(message)
    last_seq = first[channel][-1]["seq"]
    last_event_id = first["tasks"][-1]["event_id"]

    # Reconnect while the writer keeps writing: one resume by seq, one by the global event id, and the
    # task channel once more by event id; each replays the gap, then goes live.
    async with ws_client(ws_server) as by_seq, ws_client(ws_server) as by_id:
        await by_seq.send(type="subscribe", channel=channel, last_seq=last_seq)
        await by_id.send(type="subscribe", channel="tasks", last_event_id=last_event_id)
        await by_id.send(type="subscribe", channel=channel, last_event_id=first[channel][-1]["event_id"])
        streams: dict[tuple[int, str], list[dict[str, Any]]] = {}
        synced: dict[tuple[int, str], dict[str, Any]] = {}
        for index, client in enumerate((by_seq, by_id)):
            wanted = 1 if index == 0 else 2
            while len([k for k in synced if k[0] == index]) < wanted:
                message = await client.recv()
                key = (index, message.get("channel", ""))
                if message["type"] == "synced":
                    synced[key] = message
                elif "seq" in message:
                    streams.setdefault(key, []).append(message)
        assert all(s["replayed"] >= 1 for s in synced.values()), synced
        total = await writer.stop() + 1  # and task.created
        for index, client in enumerate((by_seq, by_id)):
            for key in [k for k in synced if k[0] == index]:
                stream = streams.setdefault(key, [])
                while not stream or stream[-1]["seq"] < total:
                    message = await client.recv()
                    streams.setdefault((index, message["channel"]), []).append(message)

    logged = await ws_server.call(
        lambda: ws_server.runtime.db.read(lambda conn: read_events_after_id(conn, after_id=0, limit=100_000))
    )
    log_ids = {e.seq: e.id for e in logged if e.task_id == task_id}
    assert len(log_ids) == total
    for key, second in [((0, channel), streams[(0, channel)]), ((1, channel), streams[(1, channel)])]:
        seqs = [m["seq"] for m in first[channel] + second]
        assert seqs == list(range(1, total + 1)), key
    seqs = [m["seq"] for m in first["tasks"] + streams[(1, "tasks")]]
    assert seqs == list(range(1, total + 1))
    every = first[channel] + first["tasks"] + [m for s in streams.values() for m in s]
    assert all(m["event_id"] == log_ids[m["seq"]] for m in every)
    assert synced[(0, channel)]["seq"] >= last_seq


# -- flow control and liveness --------------------------------------------------------------------


def _small_receive_buffer_socket(port: int) -> socket.socket:
    """A client socket whose kernel receive buffer is fixed and small, so a client that stops
    reading fills the server's side quickly (loopback buffers otherwise grow to tens of MB)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


async def test_a_client_that_cannot_keep_up_is_closed_with_4429_while_others_get_everything(
    tmp_path: Path,
) -> None:
    with serve_ws(tmp_path, ws_send_queue=64) as server:
        task_id = await new_task(server)
        channel = f"task:{task_id}"
        port = int(server.base_url.rsplit(":", 1)[1])
        slow_socket = _small_receive_buffer_socket(port)
        async with (
            ws_client(server, sock=slow_socket, compression=None, max_queue=1) as slow,
            ws_client(server) as fast,
        ):
            for client in (slow, fast):
                await client.send(type="subscribe", channel=channel)
                await client.expect("subscribed")
            # The slow client reads nothing from here on; 8 KiB events, 4 per transaction.
            writer = ProgressWriter(server, task_id, per_tx=4, pad=8192, limit=1600)
            writer.start()
            received: list[dict[str, Any]] = []
            async with asyncio.timeout(60):
                while server.metric("orchestrion_ws_dropped_clients_total", {"reason": "slow_consumer"}) < 1:
                    received.append(await fast.recv())
            written = await writer.stop()
            assert await slow.closed_code(timeout=30) == CloseCode.SLOW_CONSUMER
            if not received or received[-1]["seq"] < written + 1:
                received += await fast.recv_until(lambda m: m["seq"] == written + 1, timeout=60)
            # The fast client followed live (after task.created): every event, in order, once.
            assert [m["seq"] for m in received] == list(range(2, written + 2))
        assert server.metric("orchestrion_ws_dropped_clients_total", {"reason": "slow_consumer"}) == 1


class ErrorRecords(logging.Handler):
    """Collects ERROR records of a logger that does not propagate to the root (uvicorn's)."""

    def __init__(self, name: str) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []
        self.logger = logging.getLogger(name)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> ErrorRecords:
        self.logger.addHandler(self)
        return self

    def __exit__(self, *_: object) -> None:
        self.logger.removeHandler(self)


async def test_a_client_that_takes_nothing_is_dropped_without_its_close_frame_and_no_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with serve_ws(tmp_path, ws_send_queue=64) as server, ErrorRecords("uvicorn.error") as uvicorn_errors:
        task_id = await new_task(server)
        port = int(server.base_url.rsplit(":", 1)[1])
        sock = _small_receive_buffer_socket(port)
        async with ws_client(server, sock=sock, compression=None, max_queue=1) as stalled:
            await stalled.send(type="subscribe", channel=f"task:{task_id}")
            await stalled.expect("subscribed")
            writer = ProgressWriter(server, task_id, per_tx=4, pad=8192, limit=4000)
            writer.start()
            async with asyncio.timeout(60):
                while server.metric("orchestrion_ws_dropped_clients_total", {"reason": "slow_consumer"}) < 1:
                    await asyncio.sleep(0.05)
            await writer.stop()
            assert server.metric("orchestrion_ws_connections") == 0  # forgotten as soon as it is dropped
            # The close frame waits behind the data the client does not read. Past the server's close
            # deadline the server gives up on it: the client then reads what was buffered and finds
            # the connection closed without a close frame.
            await asyncio.sleep(CLOSE_TIMEOUT_SECONDS + 1)
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(30):
                    while True:
                        await stalled.ws.recv()
            assert closed.value.rcvd is None
    errors = [r for r in [*caplog.records, *uvicorn_errors.records] if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


async def test_heartbeat_closes_silent_clients_and_keeps_answering_ones(tmp_path: Path) -> None:
    with serve_ws(tmp_path, ws_ping_interval_seconds=0.3) as server:
        async with ws_client(server) as lively, ws_client(server, answer_pings=False) as silent:

            async def keep_answering() -> None:
                async with asyncio.timeout(10):
                    while lively.pings < 5:
                        with contextlib.suppress(TimeoutError):
                            await lively.recv(timeout=0.5)

            code, _ = await asyncio.gather(silent.closed_code(), keep_answering())
            assert code == CloseCode.HEARTBEAT_TIMEOUT
            await lively.send(type="ping", id="still-here")
            assert await lively.expect("pong") == {"type": "pong", "id": "still-here"}
        assert server.metric("orchestrion_ws_dropped_clients_total", {"reason": "heartbeat_timeout"}) == 1


# -- bad input ------------------------------------------------------------------------------------


async def test_bad_messages_get_errors_naming_the_field_and_the_connection_stays(tmp_path: Path) -> None:
    with serve_ws(tmp_path, ws_max_subscriptions=2) as server:
        async with ws_client(server) as client:

            async def error_for(raw: str | bytes) -> dict[str, Any]:
                await client.ws.send(raw)
                return await client.expect("error")

            assert (await error_for("{bad"))["details"]["field"] == "message"
            assert (await error_for("[1]"))["details"]["field"] == "message"
            assert (await error_for(b"\x00binary"))["details"]["field"] == "message"
            too_large = await error_for(json.dumps({"type": "ping", "pad": "x" * 70_000}))
            assert too_large["details"] == {"field": "message", "max_bytes": 65536}
            unknown_type = await error_for(json.dumps({"type": "hello"}))
            assert unknown_type["code"] == "unknown_choice"
            assert unknown_type["details"]["choices"] == ["auth", "subscribe", "unsubscribe", "ping", "pong"]
            unknown_channel = await error_for(json.dumps({"type": "subscribe", "channel": "everything"}))
            assert unknown_channel["code"] == "unknown_choice"
            assert unknown_channel["details"]["field"] == "channel"
            assert unknown_channel["details"]["choices"] == [
                "task:{id}",
                "tasks",
                "agents",
                "engines",
                "providers",
                "alerts",
                "system",
            ]
            negative = await error_for(
                json.dumps({"type": "subscribe", "channel": "tasks", "last_event_id": -1})
            )
            assert negative["details"]["field"] == "last_event_id"
            seq_on_notices = await error_for(
                json.dumps({"type": "subscribe", "channel": "system", "last_seq": 1})
            )
            assert seq_on_notices["details"]["field"] == "last_seq"
            both = {"type": "subscribe", "channel": "task:abc", "last_seq": 1, "last_event_id": 1}
            assert (await error_for(json.dumps(both)))["details"]["field"] == "last_seq"

            await client.send(type="subscribe", channel="system")
            await client.expect("subscribed")
            await client.send(type="subscribe", channel="system", id="again")
            again = await client.expect("error")
            assert again["code"] == "already_subscribed" and again["id"] == "again"
            await client.send(type="subscribe", channel="alerts", last_event_id=5)
            assert (await client.expect("subscribed"))["replay"] is False  # alerts keep no notice log yet
            await client.send(type="subscribe", channel="agents")
            assert (await client.expect("error"))["details"]["max"] == 2
            await client.send(type="unsubscribe", channel="providers")
            not_subscribed = await client.expect("error")
            assert not_subscribed["code"] == "not_subscribed"
            assert not_subscribed["details"]["choices"] == ["alerts", "system"]
            await client.send(type="auth", token=server.admin_key)
            assert (await client.expect("error"))["code"] == "already_authenticated"
            await client.send(type="unsubscribe", channel="system", id=1)
            assert await client.expect("unsubscribed") == {
                "type": "unsubscribed",
                "channel": "system",
                "id": 1,
            }
            await client.send(type="ping")
            assert await client.expect("pong") == {"type": "pong"}


# -- the protocol document ------------------------------------------------------------------------


async def test_live_messages_of_every_kind_match_the_documented_schema(ws_server: WsServer) -> None:
    """A real task run and a notice on every channel; `WsClient` checks each message against the schema."""
    seen: set[str] = set()
    async with ws_client(ws_server) as client:
        seen.add("welcome")
        client.log = []
        for channel in ("tasks", *(c.value for c in Channel)):
            await client.send(type="subscribe", channel=channel)
            seen.add((await client.expect("subscribed"))["type"])
        task_id = await new_task(ws_server, run=True)
        await client.send(type="subscribe", channel=f"task:{task_id}", last_seq=0)
        final = ("task.completed", "task.failed")  # a busy machine can time a tool out
        messages = await client.recv_until(
            lambda m: m["type"] in final and m["channel"] == "tasks", timeout=60
        )
        seen.update(m["type"] for m in messages)

        now = datetime.now(UTC)
        record = AlertRecord(
            id=1,
            rule="high_cpu",
            metric="orchestrion_system_cpu_percent",
            labels={},
            severity="warning",
            state="firing",
            value=97.0,
            threshold=90.0,
            message="CPU busy",
            fired_at=now,
            resolved_at=None,
            resolved_value=None,
            notified=False,
            notify_attempts=0,
        )
        engine = EngineStatus(
            engine="team", state=EngineState.PROCESSING, running=1, queued=0, concurrency=2, changed_at=now
        )
        circuit = CircuitChange(
            deployment="primary", previous=CircuitState.CLOSED, state=CircuitState.OPEN, reason="failure_rate"
        )
        notices = [
            Notice(
                channel="agents",
                type="agent.status",
                data={
                    "agent_id": "code_analyzer",
                    "status": "processing",
                    "previous": "idle",
                    "load": 1,
                    "success_rate": None,
                    "error_rate": None,
                    "alerts": [],
                },
                created_at=now,
            ),
            engine.notice(EngineState.IDLE),
            circuit.notice(),
            Notice(channel="alerts", type="alert.fired", data=alert_json(record), created_at=now, id=1),
            Notice(channel="alerts", type="alert.resolved", data=alert_json(record), created_at=now, id=1),
        ]

        async def publish() -> None:
            for notice in notices:
                await ws_server.runtime.bus.publish_notice(notice)
            if ws_server.runtime.sampler is not None:
                await ws_server.runtime.sampler.sample()  # a real system.metrics notice

        await ws_server.call(publish)
        wanted = {"agent.status", "engine.status", "provider.circuit", "alert.fired", "alert.resolved"}
        if ws_server.runtime.sampler is not None:
            wanted.add("system.metrics")
        async with asyncio.timeout(15):
            while not wanted <= seen:
                message = await client.recv()
                seen.add(message["type"])
                if message["type"] == "alert.resolved":
                    assert message["event_id"] is None  # an alert's id names the alert, not a notice
        await client.send(type="unsubscribe", channel="agents")
        seen.add((await client.next_of("unsubscribed"))["type"])
        await client.ws.send("{")
        seen.add((await client.next_of("error"))["type"])
        await client.send(type="ping")
        seen.add((await client.next_of("pong"))["type"])
        # Each message matched its own type's definition; each matches exactly one of ServerMessage's.
        for message in client.log:
            SERVER_MESSAGE.validate(message)

    expected = {"welcome", "subscribed", "synced", "unsubscribed", "error", "pong"} | {
        "task.created",
        "task.queued",
        "task.started",
        "step.started",
        "tool.called",
    }
    assert expected <= seen, expected - seen
    assert seen & {"step.completed", "step.failed"} and seen & {"task.completed", "task.failed"}


def test_the_schema_and_the_document_cover_every_event_type_and_close_code() -> None:
    documented = {
        d["properties"]["type"]["const"]
        for d in SCHEMA["$defs"].values()
        if "const" in d.get("properties", {}).get("type", {})
    }
    assert {t.value for t in EventType} <= documented
    text = DOCS.read_text()
    for code in CloseCode:
        assert re.search(rf"\b{code.value}\b", text), f"close code {code.value} is not in docs/websocket.md"
    for pattern in ("task:{id}", "tasks", *(c.value for c in Channel)):
        assert f"`{pattern}`" in text
    assert parse_channel("task:abc").task_id == "abc"


# -- the hub on its own: falling behind the bus, notice logs ----------------------------------------


class RecordingTransport:
    """Stands in for the web framework's socket: records what the hub sends."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.closed: int | None = None
        self.changed = asyncio.Event()

    async def send_text(self, data: str) -> None:
        self.sent.append(json.loads(data))
        self.changed.set()

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.closed = code
        self.changed.set()

    async def wait_for(self, predicate: Any, *, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self.sent):
                self.changed.clear()
                await self.changed.wait()


@contextlib.asynccontextmanager
async def standalone_hub(runtime: Runtime, **options: Any) -> AsyncIterator[WebSocketHub]:
    hub = WebSocketHub(
        db=runtime.db,
        bus=runtime.bus,
        metrics=WsMetrics(CollectorRegistry()),
        send_queue=options.pop("send_queue", 5000),
        ping_interval=60.0,
        max_subscriptions=10,
        **options,
    )
    try:
        yield hub
    finally:
        await hub.aclose()


async def connect_recorder(hub: WebSocketHub, caller: Caller) -> tuple[WsConnection, RecordingTransport]:
    transport = RecordingTransport()
    return await hub.connect(transport, caller), transport


async def test_streams_resync_from_the_log_when_the_hub_falls_behind_the_bus(runtime: Runtime) -> None:
    admin = Caller(user_id="admin", role="admin")
    owner_id = (await runtime.create_user(name="owner", role="operator"))[0].id
    owner = Caller(user_id=owner_id, role="operator")
    request = TaskRequest(title="t", task_type="code_analysis", files=[CODE], auto_execute=False)
    task = await runtime.coordinator.submit(owner, request)
    async with standalone_hub(runtime, bus_queue=4) as hub:
        conn, transport = await connect_recorder(hub, admin)
        hub.subscribe(conn, parse_channel(f"task:{task.id}"), last_event_id=None, last_seq=0)
        own, own_transport = await connect_recorder(hub, owner)
        hub.subscribe(own, parse_channel("tasks"), last_event_id=0, last_seq=None)
        live, live_transport = await connect_recorder(hub, admin)
        assert (
            hub.subscribe(live, parse_channel(f"task:{task.id}"), last_event_id=None, last_seq=None) is False
        )
        await transport.wait_for(lambda sent: any(m["type"] == "synced" for m in sent))
        await own_transport.wait_for(lambda sent: any(m["type"] == "synced" for m in sent))
        # 50 events in one publish: the hub's bus queue (4) overflows and the bus cuts it off.
        items = [("task.progress", _progress(n)) for n in range(50)]
        await runtime.db.write(lambda tx: append_events(tx, task.id, items))
        for recorder, first in ((transport, 1), (own_transport, 1), (live_transport, 2)):
            await recorder.wait_for(lambda sent: any(m.get("seq") == 51 for m in sent))
            seqs = [m["seq"] for m in recorder.sent if "task_id" in m]
            assert seqs == list(range(first, 52))
        for connection in (conn, own, live):
            await connection.aclose()


class ListNoticeLog:
    """A notice log kept in a list (what a persisted channel log looks like to the hub)."""

    def __init__(self, notices: list[Notice]) -> None:
        self.notices = notices

    async def read_notices_after(self, after_id: int, *, limit: int) -> list[Notice]:
        return [n for n in self.notices if n.id is not None and n.id > after_id][:limit]


async def test_a_channel_with_a_notice_log_resumes_from_last_event_id(runtime: Runtime) -> None:
    now = datetime.now(UTC)
    logged = [
        Notice(channel="alerts", type="alert.fired", data={"n": i}, created_at=now, id=i) for i in range(1, 6)
    ]
    log = ListNoticeLog(logged)
    async with standalone_hub(runtime, notice_logs={"alerts": log}) as hub:
        conn, transport = await connect_recorder(hub, Caller(user_id="u", role="viewer"))
        assert hub.subscribe(conn, parse_channel("alerts"), last_event_id=3, last_seq=None) is True
        await transport.wait_for(lambda sent: any(m["type"] == "synced" for m in sent))
        live = Notice(channel="alerts", type="alert.resolved", data={"n": 6}, created_at=now, id=6)
        log.notices.append(live)
        await runtime.bus.publish_notice(logged[4])  # already replayed: not sent twice
        await runtime.bus.publish_notice(live)
        await transport.wait_for(lambda sent: any(m.get("event_id") == 6 for m in sent))
        ids = [m["event_id"] for m in transport.sent if m["type"].startswith("alert.")]
        assert ids == [4, 5, 6]
        await conn.aclose()
