"""MCP tools: the servers file, a real stdio server (`tests/fixtures/mcp_server.py`), calls and shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from mcp import types

from orchestrion.exceptions import ConfigurationError, ToolError
from orchestrion.tools.base import Tool, ToolContext, ToolOutput
from orchestrion.tools.mcp import McpServerConfig, McpServerPool, McpTool, load_mcp_config, result_to_output

SERVER_SCRIPT = Path(__file__).resolve().parents[1] / "fixtures" / "mcp_server.py"
CTX = ToolContext(task_id="task-1", step_id="step-1")
# Built by concatenation so that the test file itself does not look like a leak to secret scanners.
GITHUB_TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"


def _children() -> set[int]:
    """Process ids whose parent is this process (zombies included: they stay until reaped)."""
    me = os.getpid()
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited while we looked
        # The command name is in parentheses and may hold spaces: the fields after it are fixed.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == me:
            found.add(int(entry.name))
    return found


def _config(name: str = "inv", **overrides: Any) -> McpServerConfig:
    values: dict[str, Any] = {
        "name": name,
        "command": sys.executable,
        "args": (str(SERVER_SCRIPT),),
        "timeout_seconds": 10.0,
        "startup_timeout_seconds": 30.0,
        "source": "test-servers.yaml",
    }
    values.update(overrides)
    return McpServerConfig(**values)


@pytest.fixture
async def pool() -> AsyncIterator[McpServerPool]:
    servers = McpServerPool([_config()])
    await servers.start()
    try:
        yield servers
    finally:
        await servers.aclose()


async def _run(tools: dict[str, Tool], name: str, args: dict[str, Any] | None = None) -> ToolOutput:
    output, _ = await tools[name].run(args or {}, CTX)
    return output


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mcp.yaml"
    path.write_text(text)
    return path


# -- the servers file ----------------------------------------------------------------------------


def test_load_mcp_config_reads_every_field(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
servers:
  files:
    command: /usr/bin/python3
    args: [-m, my_mcp_server, --port, 8080]
    env: {API_TOKEN: "from_env:MY_TOKEN", LOG_LEVEL: warning}
    cwd: /srv/x
    timeout_seconds: 12
    tools: [read_file, search]
  other:
    command: other-server
""",
    )
    files, other = load_mcp_config(path)
    assert files.name == "files"
    assert files.command == "/usr/bin/python3"
    assert files.args == ("-m", "my_mcp_server", "--port", "8080")
    assert files.env == {"API_TOKEN": "from_env:MY_TOKEN", "LOG_LEVEL": "warning"}
    assert files.cwd == Path("/srv/x")
    assert files.timeout_seconds == 12
    assert files.tools == frozenset({"read_file", "search"})
    assert files.source == str(path)
    assert other.args == () and other.env is None and other.tools is None and other.timeout_seconds == 30


@pytest.mark.parametrize(
    ("text", "field", "says"),
    [
        ("servers:\n  files:\n    args: [x]\n", "servers.files.command", "Field required"),
        (
            "servers:\n  files:\n    command: x\n    timeout_seconds: 0\n",
            "servers.files.timeout_seconds",
            "greater",
        ),
        ("servers:\n  files:\n    command: x\n    colour: red\n", "servers.files.colour", "Extra inputs"),
        ("servers:\n  files:\n    command: x\n    tools: []\n", "servers.files.tools", "empty allowlist"),
        ("servers:\n  files:\n    command: x\n    env: {1BAD: y}\n", "servers.files.env", "environment"),
        ("servers:\n  a.b:\n    command: x\n", "servers", "server name"),
        ("servers: [x]\n", "servers", "dictionary"),
        ("{}\n", "servers", "Field required"),
    ],
)
def test_load_mcp_config_names_file_and_field(tmp_path: Path, text: str, field: str, says: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigurationError) as caught:
        load_mcp_config(path)
    assert caught.value.details == {"file": str(path), "field": field}
    assert str(path) in caught.value.message and field in caught.value.message
    assert says in caught.value.message


def test_load_mcp_config_never_echoes_an_env_value(tmp_path: Path) -> None:
    path = _write(tmp_path, f"servers:\n  files:\n    command: x\n    env: {{TOKEN: [{GITHUB_TOKEN}]}}\n")
    with pytest.raises(ConfigurationError) as caught:
        load_mcp_config(path)
    assert caught.value.details["field"] == "servers.files.env.TOKEN"
    assert GITHUB_TOKEN not in caught.value.message


def test_load_mcp_config_refuses_bad_yaml_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not valid YAML") as caught:
        load_mcp_config(_write(tmp_path, "servers: [unclosed\n"))
    assert caught.value.details == {"file": str(tmp_path / "mcp.yaml")}
    with pytest.raises(ConfigurationError, match="cannot be read"):
        load_mcp_config(tmp_path / "missing.yaml")


# -- a real server over stdio --------------------------------------------------------------------


async def test_pool_lists_the_servers_tools_with_their_schemas(pool: McpServerPool) -> None:
    tools = pool.tools()
    assert {"mcp.inv.word_count", "mcp.inv.lookup_host", "mcp.inv.fail", "mcp.inv.sleep"} <= set(tools)
    word_count = tools["mcp.inv.word_count"]
    assert isinstance(word_count, McpTool)
    assert word_count.name == "mcp.inv.word_count" and type(word_count).name == "mcp.inv.word_count"
    assert word_count.description.startswith("Count the words and lines of a text.")
    assert word_count.server == "inv" and word_count.remote_name == "word_count"
    schema = word_count.json_schema()
    assert schema["type"] == "object" and schema["required"] == ["text"]
    assert schema["properties"]["text"]["type"] == "string"
    # Each tool is its own class: one tool's name does not leak into another's.
    assert tools["mcp.inv.lookup_host"].name == "mcp.inv.lookup_host"


async def test_mcp_tool_run_turns_text_into_observations(pool: McpServerPool) -> None:
    tools = pool.tools()
    counted = await _run(tools, "mcp.inv.word_count", {"text": "one two three\nfour"})
    assert [o.summary for o in counted.observations] == ["4 words, 2 lines"]
    assert counted.observations[0].data["text"] == "4 words, 2 lines"
    assert counted.data["server"] == "inv" and counted.data["tool"] == "mcp.inv.word_count"

    host = await _run(tools, "mcp.inv.lookup_host", {"name": "db.internal"})
    assert host.observations[0].summary == "db.internal: 10.0.0.12 (database)"


async def test_mcp_tool_summarises_images_and_resources(pool: McpServerPool) -> None:
    output = await _run(pool.tools(), "mcp.inv.snapshot")
    text, image, resource = output.observations
    assert text.summary == "inventory snapshot" and text.data["text"] == "inventory snapshot\n2 hosts"
    assert image.summary == "image (image/png, 70 bytes)"
    assert image.data == {"type": "image", "mime_type": "image/png", "bytes": 70}
    assert resource.summary == "resource inventory://hosts (text/plain, 24 chars)"
    assert resource.location == "inventory://hosts"
    assert resource.data["preview"] == "db.internal\nweb.internal"


async def test_mcp_tool_validates_arguments_against_the_servers_schema(pool: McpServerPool) -> None:
    tools = pool.tools()
    with pytest.raises(ToolError, match="'text' is a required property") as missing:
        await tools["mcp.inv.word_count"].run({}, CTX)
    assert missing.value.tool == "mcp.inv.word_count"
    with pytest.raises(ToolError, match=r"\$\.seconds: 'soon' is not of type 'number'"):
        await tools["mcp.inv.sleep"].run({"seconds": "soon"}, CTX)


async def test_error_results_become_tool_errors_with_the_servers_message(pool: McpServerPool) -> None:
    with pytest.raises(ToolError, match=r"mcp\.inv\.fail failed: .*the inventory is offline"):
        await pool.tools()["mcp.inv.fail"].run({}, CTX)
    with pytest.raises(ToolError) as caught:
        await pool.tools()["mcp.inv.fail"].run({"reason": f"token {GITHUB_TOKEN} revoked"}, CTX)
    assert GITHUB_TOKEN not in caught.value.message and "revoked" in caught.value.message


async def test_a_slow_call_times_out_and_the_server_stays_usable() -> None:
    async with McpServerPool([_config(timeout_seconds=0.5)]) as servers:
        tools = servers.tools()
        with pytest.raises(ToolError, match=r"mcp.inv.sleep timed out after 0.5s"):
            await tools["mcp.inv.sleep"].run({"seconds": 30}, CTX)
        output = await _run(tools, "mcp.inv.word_count", {"text": "still here"})
        assert output.observations[0].summary == "2 words, 1 lines"
        assert servers.connections[0].restarts == 0


async def test_concurrent_calls_share_one_session(pool: McpServerPool) -> None:
    tools = pool.tools()
    outputs = await asyncio.gather(
        *(_run(tools, "mcp.inv.lookup_host", {"name": n}) for n in ("db.internal", "web.internal", "x"))
    )
    assert [o.observations[0].summary for o in outputs] == [
        "db.internal: 10.0.0.12 (database)",
        "web.internal: 10.0.0.20 (web)",
        "x: not in the inventory",
    ]


async def test_a_crashed_server_is_restarted_on_the_next_call(pool: McpServerPool) -> None:
    tools = pool.tools()
    first_pid = int((await _run(tools, "mcp.inv.pid")).observations[0].summary)
    with pytest.raises(ToolError, match="MCP server inv exited during the call"):
        await tools["mcp.inv.crash"].run({}, CTX)
    connection = pool.connections[0]
    for _ in range(200):  # the owner task notices stdout closing and reaps the process
        if not connection.running:
            break
        await asyncio.sleep(0.01)
    assert not connection.running
    second_pid = int((await _run(tools, "mcp.inv.pid")).observations[0].summary)
    assert second_pid != first_pid
    assert connection.restarts == 1
    assert first_pid not in _children()  # reaped, not a zombie
    output = await _run(tools, "mcp.inv.word_count", {"text": "back again"})
    assert output.observations[0].summary == "2 words, 1 lines"


async def test_a_server_that_cannot_restart_fails_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRION_TEST_MCP_TOKEN", "t0ken-value")
    config = _config(env={"INVENTORY_TOKEN": "from_env:ORCHESTRION_TEST_MCP_TOKEN"})
    async with McpServerPool([config]) as servers:
        tools = servers.tools()
        monkeypatch.delenv("ORCHESTRION_TEST_MCP_TOKEN")
        with pytest.raises(ToolError, match="exited during the call"):
            await tools["mcp.inv.crash"].run({}, CTX)
        with pytest.raises(
            ToolError, match=r"did not restart: .*servers\.inv\.env\.INVENTORY_TOKEN"
        ) as caught:
            await tools["mcp.inv.pid"].run({}, CTX)
        assert "t0ken-value" not in caught.value.message


async def test_env_values_come_from_the_environment_and_stay_out_of_logs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="orchestrion")
    monkeypatch.setenv("ORCHESTRION_TEST_MCP_TOKEN", "s3cret-from-env")
    config = _config(env={"INVENTORY_TOKEN": "from_env:ORCHESTRION_TEST_MCP_TOKEN", "MODE": "literal"})
    async with McpServerPool([config]) as servers:
        tools = servers.tools()
        token = await _run(tools, "mcp.inv.read_env", {"name": "INVENTORY_TOKEN"})
        mode = await _run(tools, "mcp.inv.read_env", {"name": "MODE"})
        # Only the configured variables and the SDK's safe defaults reach the server.
        leaked = await _run(tools, "mcp.inv.read_env", {"name": "ORCHESTRION_TEST_MCP_TOKEN"})
    assert token.observations[0].summary == "s3cret-from-env"
    assert mode.observations[0].summary == "literal"
    assert leaked.observations[0].summary == "(unset)"
    assert all("s3cret-from-env" not in record.getMessage() for record in caplog.records)


async def test_an_unset_from_env_variable_fails_the_start() -> None:
    config = _config(env={"INVENTORY_TOKEN": "from_env:ORCHESTRION_TEST_MCP_UNSET"})
    servers = McpServerPool([config])
    with pytest.raises(ConfigurationError, match="ORCHESTRION_TEST_MCP_UNSET is not set") as caught:
        await servers.start()
    assert caught.value.details == {"file": "test-servers.yaml", "field": "servers.inv.env.INVENTORY_TOKEN"}


async def test_the_allowlist_keeps_only_the_named_tools(caplog: pytest.LogCaptureFixture) -> None:
    config = _config(tools=frozenset({"word_count", "lookup_host", "no_such_tool"}))
    async with McpServerPool([config]) as servers:
        assert sorted(servers.tools()) == ["mcp.inv.lookup_host", "mcp.inv.word_count"]
    assert any("no_such_tool" in record.getMessage() for record in caplog.records)


async def test_start_failures_name_the_server_and_show_its_stderr() -> None:
    crashing = _config(
        name="broken",
        args=("-c", "import sys; sys.stderr.write('inventory database unreachable'); sys.exit(2)"),
    )
    with pytest.raises(ConfigurationError, match="MCP server broken failed to start") as caught:
        await McpServerPool([crashing]).start()
    assert "inventory database unreachable" in caught.value.message
    assert caught.value.details == {"file": "test-servers.yaml", "server": "broken"}

    missing = _config(name="missing", command="/nonexistent/mcp-server")
    with pytest.raises(ConfigurationError, match="cannot run '/nonexistent/mcp-server'"):
        await McpServerPool([missing]).start()


async def test_one_failing_server_stops_the_others_started_with_it() -> None:
    before = _children()
    servers = McpServerPool([_config(), _config(name="broken", args=("-c", "raise SystemExit(1)"))])
    with pytest.raises(ConfigurationError, match="broken"):
        await servers.start()
    assert servers.tools() == {}
    assert _children() - before == set()


async def test_aclose_stops_every_server_and_leaves_no_process() -> None:
    before = _children()
    servers = McpServerPool([_config(name="one"), _config(name="two")])
    await servers.start()
    pids = {
        int((await _run(servers.tools(), f"mcp.{name}.pid")).observations[0].summary)
        for name in ("one", "two")
    }
    assert pids <= _children() - before
    await servers.aclose()
    assert _children() - before == set()
    assert servers.tools() == {}
    await servers.aclose()  # idempotent


async def test_a_call_in_flight_at_shutdown_fails_instead_of_hanging() -> None:
    before = _children()
    servers = McpServerPool([_config(timeout_seconds=60.0)])
    await servers.start()
    sleeper = servers.tools()["mcp.inv.sleep"]
    call = asyncio.create_task(sleeper.run({"seconds": 60}, CTX))
    await asyncio.sleep(0.5)  # let the request reach the server
    await servers.aclose()
    with pytest.raises(ToolError, match="was shut down during the call"):
        await call
    with pytest.raises(ToolError, match="shut down"):
        await sleeper.run({"seconds": 1}, CTX)
    assert _children() - before == set()


# -- results -------------------------------------------------------------------------------------


def _result(
    content: Sequence[Any], *, is_error: bool = False, structured: dict[str, Any] | None = None
) -> Any:
    return types.CallToolResult(content=list(content), isError=is_error, structuredContent=structured)


def test_result_text_is_redacted_and_capped() -> None:
    long_text = f"header with {GITHUB_TOKEN}\n" + "x" * 20_000
    output = result_to_output(
        _result([types.TextContent(type="text", text=long_text)]), tool="mcp.a.b", server="a"
    )
    (observation,) = output.observations
    assert GITHUB_TOKEN not in observation.summary and GITHUB_TOKEN not in observation.data["text"]
    assert observation.summary.startswith("header with ghp_")
    assert observation.data["truncated"] is True and len(observation.data["text"]) <= 4000
    assert observation.data["chars"] == len(long_text)


def test_structured_only_and_empty_results_still_observe_something() -> None:
    structured = result_to_output(_result([], structured={"hosts": 2}), tool="mcp.a.b", server="a")
    assert structured.observations[0].summary == '{"hosts": 2}'
    assert structured.data["structured"] == '{"hosts": 2}'
    empty = result_to_output(_result([]), tool="mcp.a.b", server="a")
    assert empty.observations[0].summary == "mcp.a.b returned no content"


def test_blob_resources_and_links_are_summarised_without_their_bytes() -> None:
    blob = types.EmbeddedResource(
        type="resource",
        resource=types.BlobResourceContents(
            uri="file:///dump.bin", mimeType="application/octet-stream", blob="AAEC"
        ),
    )
    link = types.ResourceLink(
        type="resource_link", uri="file:///big.log", name="big.log", mimeType="text/plain"
    )
    output = result_to_output(_result([blob, link]), tool="mcp.a.b", server="a")
    assert (
        output.observations[0].summary
        == "binary resource file:///dump.bin (application/octet-stream, 3 bytes)"
    )
    assert "blob" not in output.observations[0].data
    assert output.observations[1].summary == "resource link file:///big.log (text/plain)"
    assert output.observations[1].location == "file:///big.log"


def test_error_results_without_text_get_a_generic_message() -> None:
    with pytest.raises(ToolError, match=r"mcp\.a\.b failed: the server reported an error"):
        result_to_output(_result([], is_error=True), tool="mcp.a.b", server="a")
