"""`exposed_files` against real sites on 127.0.0.1: exposures confirmed by content, soft 404s ignored."""

from __future__ import annotations

import pytest

from orchestrion.domain.findings import Severity
from orchestrion.tools.base import ToolOutput
from orchestrion.tools.exposed_files import EXPOSED_PATHS, EXPOSURE_KINDS, ExposedFilesTool
from orchestrion.tools.targets import TargetPolicy
from tests.fixtures.net import CertificateSet, LocalHTTPServer, PolicyFactory, Route
from tests.fixtures.websec import (
    DB_PASSWORD,
    LOCAL,
    REPO_PASSWORD,
    TOKEN,
    CatchAllRoutes,
    exposed_routes,
    run_tool,
    serve,
    soft_404,
)


async def scan(policy: TargetPolicy, target: str, **args: str) -> ToolOutput:
    return await run_tool(ExposedFilesTool(), policy, target, **args)


def by_title(output: ToolOutput) -> dict[str, Severity]:
    return {finding.title: finding.severity for finding in output.findings}


async def test_exposed_files_are_confirmed_by_content_with_severities(
    make_policy: PolicyFactory, certs: CertificateSet
) -> None:
    async with serve(exposed_routes(), context=certs.server_context("valid")) as server:
        output = await scan(make_policy(LOCAL), server.url("/", host="app.test"))
        requested = [request.path for request in server.requests]
    assert by_title(output) == {
        "Git repository metadata is downloadable: /.git/HEAD, /.git/config": Severity.CRITICAL,
        "Environment file is downloadable: /.env": Severity.CRITICAL,
        "Database dump is downloadable: /db.sql": Severity.CRITICAL,
        "Backup archive is downloadable: /backup.zip": Severity.HIGH,
        "Password file (.htpasswd) is downloadable: /.htpasswd": Severity.HIGH,
        "Apache server-status page is public: /server-status": Severity.MEDIUM,
        "macOS .DS_Store file is downloadable: /.DS_Store": Severity.LOW,
    }
    assert output.data["exposed"] == [
        "/.git/HEAD",
        "/.git/config",
        "/.env",
        "/backup.zip",
        "/db.sql",
        "/server-status",
        "/.htpasswd",
        "/.DS_Store",
    ]
    # A 403 is not an exposure, nor is a 200 without the file's signature.
    assert output.data["forbidden"] == ["/.svn/entries"]
    assert output.data["unrecognised"] == ["/phpinfo.php"]
    assert output.data["soft_404"] is False and output.data["checked"] == len(EXPOSED_PATHS)
    assert requested[0].startswith("/orchestrion-missing-") and len(requested) == len(EXPOSED_PATHS) + 1


async def test_findings_cite_the_observations_that_prove_them(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    async with serve(exposed_routes()) as server:
        output = await scan(make_policy(LOCAL), server.url("/", host="app.test"))
    git = next(f for f in output.findings if f.title.startswith("Git"))
    cited = [output.observations[i] for i in git.observation_indexes]
    assert [o.data["path"] for o in cited] == ["/.git/HEAD", "/.git/config"]
    assert cited[0].data["excerpt"] == "ref: refs/heads/main"
    head = server.url("/.git/HEAD", host="app.test")
    assert cited[0].summary == f"GET {head} -> 200, content matches /.git/HEAD: ref: refs/heads/main"
    assert "/.git/config holds credentials" in git.description
    assert git.recommendation.startswith("Remove it from the web root")
    baseline = output.observations[0]
    assert baseline.data["soft_404"] is False and baseline.data["status"] == 404


async def test_secrets_are_never_quoted(make_policy: PolicyFactory) -> None:
    async with serve(exposed_routes()) as server:
        output = await scan(make_policy(LOCAL), server.url("/", host="app.test"))
    text = repr(output)
    for secret in (DB_PASSWORD, TOKEN, REPO_PASSWORD, "$apr1$abcdefgh", "admin:"):
        assert secret not in text
    env = next(o for o in output.observations if o.data.get("path") == "/.env")
    assert env.data["excerpt"] == "APP_ENV=…(10 chars)\nDB_PASSWORD=…(13 chars)\nGITHUB_TOKEN=…(40 chars)"
    assert env.data["holds_credentials"] is True
    config = next(o for o in output.observations if o.data.get("path") == "/.git/config")
    assert config.data["excerpt"] == "[core]\nrepositoryformatversion = 0\nbare = false"
    htpasswd = next(o for o in output.observations if o.data.get("path") == "/.htpasswd")
    assert htpasswd.data["excerpt"] == "1 password entries (apr1-MD5 hashes)"


async def test_more_kinds_of_exposure(make_policy: PolicyFactory) -> None:
    text = [("Content-Type", "text/plain")]
    routes = {
        "/wp-config.php.bak": Route(
            headers=text,
            body=f"<?php\ndefine('DB_NAME', 'wp');\ndefine('DB_PASSWORD', '{DB_PASSWORD}');\n".encode(),
        ),
        "/.svn/entries": Route(headers=text, body=b"12\n"),
        "/info.php": Route(body=b"<html><head><title>phpinfo()</title></head><h1>PHP Version 8.1.2</h1>"),
        "/.aws/credentials": Route(headers=text, body=b"[default]\naws_access_key_id = AKIAEXAMPLE\n"),
        "/id_rsa": Route(headers=text, body=b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=\n"),
    }
    async with serve(routes) as server:
        output = await scan(make_policy(LOCAL), server.url("/", host="app.test"))
    assert by_title(output) == {
        "Backup copy of a PHP configuration file is downloadable: /wp-config.php.bak": Severity.CRITICAL,
        "Subversion working-copy metadata is downloadable: /.svn/entries": Severity.HIGH,
        "phpinfo() page is public: /info.php": Severity.MEDIUM,
        "Cloud credentials file is downloadable: /.aws/credentials": Severity.CRITICAL,
        "Private key is downloadable: /id_rsa": Severity.CRITICAL,
    }
    assert DB_PASSWORD not in repr(output) and "b3BlbnNzaC1rZXk" not in repr(output)
    config = next(o for o in output.observations if o.data.get("path") == "/wp-config.php.bak")
    assert config.data["excerpt"].splitlines()[2] == "define('DB_PASSWORD', '…(13 chars)');"


async def test_a_soft_404_site_reports_nothing(make_policy: PolicyFactory) -> None:
    routes = CatchAllRoutes({}, soft_404)
    async with serve(routes) as server:
        output = await scan(make_policy(LOCAL), server.url("/", host="app.test"))
    assert output.findings == ()
    assert output.data["soft_404"] is True
    assert output.data["like_missing_page"] == [entry.path for entry in EXPOSED_PATHS]
    assert "exposed" not in output.data
    assert "(a soft 404" in output.observations[0].summary


async def test_a_soft_404_site_with_a_real_env_file_reports_only_it(make_policy: PolicyFactory) -> None:
    routes = CatchAllRoutes({"/.env": exposed_routes()["/.env"]}, soft_404)
    async with serve(routes) as server:
        output = await scan(make_policy(LOCAL), server.url("/", host="app.test"))
    (finding,) = output.findings
    assert finding.title == "Environment file is downloadable: /.env"
    # The catch-all answer is part of the proof: it shows this is not the page every path gets.
    assert 0 in finding.observation_indexes
    assert output.data["exposed"] == ["/.env"]


async def test_a_site_that_returns_the_same_file_for_every_path_is_not_exposed(
    make_policy: PolicyFactory,
) -> None:
    # Even content that has a signature proves nothing when every path gets it.
    same = Route(headers=[("Content-Type", "text/plain")], body=b"A=1\nB=2\n")
    async with serve(CatchAllRoutes({}, lambda _path: same)) as server:
        output = await scan(make_policy(LOCAL), server.url("/", host="app.test"))
    assert output.findings == ()
    assert "/.env" in output.data["like_missing_page"]


async def test_plain_text_answers_without_signatures_are_unrecognised(make_policy: PolicyFactory) -> None:
    routes = {"/.git/HEAD": Route(body=b"<html>login</html>"), "/.env": Route(body=b"just some text")}
    async with serve(routes) as server:
        output = await scan(make_policy(LOCAL), server.url("/", host="app.test"))
    assert output.findings == ()
    assert output.data["unrecognised"] == ["/.git/HEAD", "/.env"]


async def test_the_base_path_scopes_the_requests(make_policy: PolicyFactory) -> None:
    routes = {"/shop/.git/config": exposed_routes()["/.git/config"]}
    async with serve(routes) as server:
        output = await scan(make_policy(LOCAL), server.url("/", host="app.test"), base_path="/shop/")
        paths = [request.path for request in server.requests]
    assert all(path.startswith("/shop/") for path in paths)
    assert output.data["exposed"] == ["/.git/config"]
    assert output.data["base_url"] == server.url("/shop", host="app.test")


async def test_the_shared_fixture_exposures_are_found(
    make_policy: PolicyFactory, http_server: LocalHTTPServer
) -> None:
    output = await scan(make_policy(LOCAL), http_server.url("/"))
    assert {f.title for f in output.findings} == {
        "Git repository metadata is downloadable: /.git/config",
        "Environment file is downloadable: /.env",
    }
    # The .env holds a password (critical); the .git/config only a remote without credentials (high).
    assert sorted(f.severity for f in output.findings) == [Severity.CRITICAL, Severity.HIGH]


async def test_bodies_are_read_with_small_caps(make_policy: PolicyFactory) -> None:
    big = Route(body=b"PK\x03\x04" + b"\x00" * (5 * 1024 * 1024))
    async with serve({"/backup.zip": big}) as server:
        output = await scan(make_policy(LOCAL), server.url("/", host="app.test"))
    zipped = next(o for o in output.observations if o.data.get("path") == "/backup.zip")
    assert zipped.data["bytes_read"] == 64


@pytest.mark.parametrize("kind", sorted({entry.kind for entry in EXPOSED_PATHS}))
def test_every_kind_is_explained(kind: str) -> None:
    exposure = EXPOSURE_KINDS[kind]
    assert exposure.title and exposure.impact and exposure.recommendation


@pytest.mark.parametrize(
    ("path", "body", "confirmed"),
    [
        ("/.git/HEAD", b"0123456789abcdef0123456789abcdef01234567\n", True),
        ("/.git/HEAD", b"ref: refs/heads/main\n<html>", False),
        ("/.git/index", b"DIRC\x00\x00\x00\x02", True),
        ("/.env", b"<!doctype html>\nA=1\nB=2", False),
        ("/.env", b"# comment\nA=1\n", False),
        ("/.env", b"export A=1\nB=2\n", True),
        ("/.svn/entries", b"12\n", True),
        ("/.svn/wc.db", b"SQLite format 3\x00rest", True),
        ("/backup.tar.gz", b"\x1f\x8b\x08\x00", True),
        ("/dump.sql", b"-- PostgreSQL database dump\n", True),
        ("/wp-config.php.bak", b"<?php\ndefine('DB_NAME', 'wp');\n", True),
        ("/wp-config.php.bak", b"<html><body>nope</body></html>", False),
        ("/info.php", b"<html><title>phpinfo()</title>", True),
        ("/.htpasswd", b"admin:$2y$10$abcdefghijklmnopqrstuv\nbob:{SHA}abc=\n", True),
        ("/.htpasswd", b"admin:$apr1$x$y\n<html>", False),
        ("/.aws/credentials", b"[default]\naws_access_key_id = AKIA...\n", True),
        ("/id_rsa", b"-----BEGIN OPENSSH PRIVATE KEY-----\n", True),
    ],
)
def test_signatures(path: str, body: bytes, confirmed: bool) -> None:
    entry = next(e for e in EXPOSED_PATHS if e.path == path)
    assert (entry.confirm(body) is not None) is confirmed
