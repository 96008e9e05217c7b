"""The licence audit: manifests and lock files in, licences settled, conflicts found and cited."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrion.domain.findings import Severity
from orchestrion.tools.base import InputFile, Observation, ProposedFinding, ToolContext, ToolOutput
from orchestrion.tools.licences import LicenceAuditTool, identify_licence_text
from orchestrion.tools.licences_spdx import LicenceCategory, describe_licence
from orchestrion.tools.licences_table import NPM, PYPI, TABLE_DATE, known_licence

MIT_TEXT = """MIT License

Copyright (c) 2024 Example

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction...
"""
GPL3_TEXT = """                    GNU GENERAL PUBLIC LICENSE
                       Version 3, 29 June 2007

 Copyright (C) 2007 Free Software Foundation, Inc. <https://fsf.org/>
"""


def _package_json(**extra: Any) -> str:
    document = {
        "name": "shop",
        "version": "1.0.0",
        "license": "MIT",
        "dependencies": {"express": "^4.18.2", "reportgen": "^2.1.0", "chartkit": "3.0.0"},
        "devDependencies": {"jest": "^29.7.0"},
    }
    document.update(extra)
    return json.dumps(document, indent=2)


def _package_lock() -> str:
    packages = {
        "": {
            "name": "shop",
            "version": "1.0.0",
            "license": "MIT",
            "dependencies": {"express": "^4.18.2", "reportgen": "^2.1.0", "chartkit": "3.0.0"},
            "devDependencies": {"jest": "^29.7.0"},
        },
        "node_modules/express": {"version": "4.18.2", "license": "MIT"},
        "node_modules/reportgen": {"version": "2.1.4", "license": "AGPL-3.0-only"},
        "node_modules/chartkit": {"version": "3.0.0", "license": "GPL-3.0-or-later"},
        "node_modules/chartkit/node_modules/mystery-dep": {
            "version": "0.0.1",
            "license": "SEE LICENSE IN EULA",
        },
        "node_modules/left-pad": {"version": "1.3.0"},
        "node_modules/jest": {"version": "29.7.0", "dev": True, "license": "MIT"},
        "packages/internal": {"version": "0.0.0", "license": "GPL-3.0-only"},
        "node_modules/internal": {"resolved": "packages/internal", "link": True},
    }
    return json.dumps(
        {"name": "shop", "lockfileVersion": 3, "requires": True, "packages": packages}, indent=2
    )


PYPROJECT = """[project]
name = "analytics"
version = "0.1.0"
license = "MIT"
dependencies = [
    "requests>=2.31",
    "ultralytics==8.1.0",
    "mysqlclient==2.2.4",
]

[project.optional-dependencies]
dev = ["pylint>=3"]
"""

REQUIREMENTS = """# app requirements
flask==3.0.3
requests>=2.31
pymupdf
pyyaml==6.0.1 \\
    --hash=sha256:0000
-r base.txt
-e git+https://example.test/repo.git#egg=thing
internal-tool==1.0 ; python_version >= "3.11"
"""


async def _audit(*files: tuple[str, str]) -> ToolOutput:
    ctx = ToolContext(task_id="t", step_id="s", files=[InputFile(name=n, content=c) for n, c in files])
    output, _ = await LicenceAuditTool().run({}, ctx)
    return output


def _finding(output: ToolOutput, fragment: str) -> ProposedFinding:
    matches = [f for f in output.findings if fragment in f.title]
    assert len(matches) == 1, [f.title for f in output.findings]
    return matches[0]


def _cited(output: ToolOutput, finding: ProposedFinding) -> list[Observation]:
    assert finding.observation_indexes, finding.title
    return [output.observations[i] for i in finding.observation_indexes]


def _dependency(output: ToolOutput, name: str) -> Observation:
    return next(o for o in output.observations if o.data.get("name") == name)


# -- copyleft in a permissive project --------------------------------------------------------------


async def test_agpl_and_gpl_from_the_lock_file_are_found_in_a_mit_project() -> None:
    output = await _audit(("web/package.json", _package_json()), ("web/package-lock.json", _package_lock()))

    agpl = _finding(output, "reportgen")
    assert agpl.severity is Severity.HIGH
    assert agpl.title == "Network copyleft dependency reportgen (AGPL-3.0-only)"
    assert "the project's licence is MIT (permissive)" in agpl.description
    dependency, project = _cited(output, agpl)
    assert dependency.data == {
        "name": "reportgen",
        "ecosystem": "npm",
        "versions": ["2.1.4"],
        "licence": "AGPL-3.0-only",
        "spdx": "AGPL-3.0-only",
        "category": "network_copyleft",
        "licence_source": "lock file",
        "files": ["web/package.json", "web/package-lock.json"],
        "direct": True,
        "scope": "runtime",
    }
    assert dependency.location == "web/package-lock.json:23"
    assert project.summary.startswith("Project licence: MIT (permissive) in web/package.json:4")

    gpl = _finding(output, "chartkit")
    assert gpl.severity is Severity.MEDIUM
    assert gpl.title == "Strong copyleft dependency chartkit (GPL-3.0-or-later)"
    assert _cited(output, gpl)[0].data["licence_source"] == "lock file"


async def test_workspace_links_are_the_project_itself_and_not_dependencies() -> None:
    output = await _audit(("package.json", _package_json()), ("package-lock.json", _package_lock()))

    names = {o.data.get("name") for o in output.observations}
    assert "internal" not in names
    assert not any("internal" in f.title for f in output.findings)


async def test_agpl_and_gpl_from_the_bundled_table_are_found() -> None:
    output = await _audit(("pyproject.toml", PYPROJECT))

    agpl = _finding(output, "ultralytics")
    assert agpl.severity is Severity.HIGH
    dependency, project = _cited(output, agpl)
    assert dependency.data["licence_source"] == "bundled table"
    assert f"from the bundled table ({TABLE_DATE})" in dependency.summary
    assert dependency.location == "pyproject.toml:7"
    assert project.data["licences"][0] == {
        "file": "pyproject.toml",
        "line": 4,
        "declared": "MIT",
        "spdx": "MIT",
        "category": "permissive",
    }
    gpl = _finding(output, "mysqlclient")
    assert (gpl.severity, _cited(output, gpl)[0].data["licence"]) == (Severity.MEDIUM, "GPL-2.0-or-later")


async def test_a_gpl_development_dependency_is_low() -> None:
    output = await _audit(("pyproject.toml", PYPROJECT))

    pylint = _finding(output, "pylint")
    assert pylint.severity is Severity.LOW
    assert "development dependency only" in pylint.description
    assert _cited(output, pylint)[0].data["scope"] == "dev"


async def test_a_copyleft_project_may_depend_on_copyleft_code() -> None:
    gpl_project = PYPROJECT.replace('license = "MIT"', 'license = "GPL-3.0-or-later"')
    output = await _audit(("pyproject.toml", gpl_project))

    assert not [f for f in output.findings if "copyleft" in f.title.lower()]
    assert _dependency(output, "ultralytics").data["category"] == "network_copyleft"


async def test_a_project_without_a_licence_is_flagged_and_still_checked_for_copyleft() -> None:
    unlicensed = PYPROJECT.replace('license = "MIT"\n', "")
    output = await _audit(("pyproject.toml", unlicensed))

    missing = _finding(output, "declares no licence")
    assert missing.severity is Severity.LOW
    project = _cited(output, missing)[0]
    assert project.data["missing"] is True
    assert project.summary.startswith("No project licence declared (looked in pyproject.toml")
    agpl = _finding(output, "ultralytics")
    assert "the project declares no licence" in agpl.description


async def test_a_licence_file_declares_the_project_licence() -> None:
    unlicensed = PYPROJECT.replace('license = "MIT"\n', "")
    output = await _audit(("pyproject.toml", unlicensed), ("LICENSE", MIT_TEXT))

    assert not any("declares no licence" in f.title for f in output.findings)
    assert output.data["project_licences"] == ["MIT"]
    with_gpl = await _audit(("pyproject.toml", unlicensed), ("COPYING", GPL3_TEXT))
    assert with_gpl.data["project_licences"] == ["GPL-3.0-only"]
    assert not [f for f in with_gpl.findings if "copyleft" in f.title.lower()]


async def test_non_commercial_dependencies_are_medium() -> None:
    lock = json.loads(_package_lock())
    lock["packages"]["node_modules/fonts"] = {"version": "1.0.0", "license": "CC-BY-NC-4.0"}
    output = await _audit(("package.json", _package_json()), ("package-lock.json", json.dumps(lock)))

    finding = _finding(output, "fonts")
    assert finding.severity is Severity.MEDIUM
    assert "restricts commercial" in finding.description


# -- unknown, unpinned ------------------------------------------------------------------------------


async def test_unknown_licences_are_listed_per_ecosystem() -> None:
    output = await _audit(("package.json", _package_json()), ("package-lock.json", _package_lock()))

    finding = _finding(output, "unknown licence")
    assert finding.severity is Severity.LOW
    assert finding.title == "2 npm dependencies with an unknown licence"
    (observation,) = _cited(output, finding)
    listed = {entry["name"]: entry for entry in observation.data["dependencies"]}
    assert set(listed) == {"left-pad", "mystery-dep"}
    # An unrecognised declaration is kept as evidence but never turned into a guess.
    assert listed["mystery-dep"]["declared"] == "SEE LICENSE IN EULA"
    assert listed["left-pad"]["declared"] is None


async def test_unpinned_requirements_are_low_and_pinned_ones_are_not_listed() -> None:
    output = await _audit(("requirements.txt", REQUIREMENTS))

    finding = _finding(output, "unpinned")
    assert finding.title == "2 unpinned dependencies in requirements.txt"
    assert finding.severity is Severity.LOW
    unpinned, manifest = _cited(output, finding)
    assert unpinned.data["dependencies"] == [
        {"name": "requests", "spec": ">=2.31", "line": 3},
        {"name": "pymupdf", "spec": "(any)", "line": 4},
    ]
    assert unpinned.location == "requirements.txt:3"
    assert manifest.data["kind"] == "requirements"
    assert manifest.data["dependencies"] == 5
    assert manifest.data["notes"] == ["skipped 2 option or non-registry lines"]
    # pymupdf's licence comes from the table; internal-tool is in no table, so it is unknown.
    assert _finding(output, "pymupdf").severity is Severity.HIGH
    (unknown,) = _cited(output, _finding(output, "unknown licence"))
    assert [entry["name"] for entry in unknown.data["dependencies"]] == ["internal-tool"]


async def test_a_lock_file_beside_the_manifest_pins_its_ranges() -> None:
    output = await _audit(("package.json", _package_json()), ("package-lock.json", _package_lock()))
    assert not any("unpinned" in f.title for f in output.findings)

    alone = await _audit(("package.json", _package_json()))
    finding = _finding(alone, "unpinned")
    assert finding.title == "3 unpinned dependencies in package.json"
    names = [entry["name"] for entry in _cited(alone, finding)[0].data["dependencies"]]
    assert names == ["express", "reportgen", "jest"]

    elsewhere = await _audit(("package.json", _package_json()), ("other/package-lock.json", _package_lock()))
    assert any("unpinned" in f.title for f in elsewhere.findings)
    with_yarn = await _audit(("package.json", _package_json()), ("yarn.lock", "# yarn lockfile v1\n"))
    assert not any("unpinned" in f.title for f in with_yarn.findings)


async def test_every_finding_cites_existing_observations() -> None:
    output = await _audit(
        ("web/package.json", _package_json()),
        ("web/package-lock.json", _package_lock()),
        ("pyproject.toml", PYPROJECT),
        ("requirements.txt", REQUIREMENTS),
    )
    assert len(output.findings) >= 8
    for finding in output.findings:
        assert finding.observation_indexes
        assert all(0 <= i < len(output.observations) for i in finding.observation_indexes)


async def test_no_manifest_is_said_plainly() -> None:
    output = await _audit(("app.py", "print('hi')\n"))

    assert output.findings == ()
    assert output.observations[0].summary.startswith("No dependency manifest among 1 inputs")


async def test_a_broken_manifest_is_reported_not_raised() -> None:
    output = await _audit(("package.json", "{not json"), ("pyproject.toml", "[project\n"))

    errors = {o.data["file"]: o.data["error"] for o in output.observations if "error" in o.data}
    assert errors["package.json"] == "not a JSON object"
    assert errors["pyproject.toml"].startswith("not valid TOML")


# -- other ecosystems -------------------------------------------------------------------------------


async def test_composer_lock_licences_are_alternatives() -> None:
    composer = json.dumps(
        {
            "name": "acme/site",
            "license": "proprietary",
            "require": {"php": ">=8.1", "ext-json": "*", "acme/pdf": "^1.0", "monolog/monolog": "3.5.0"},
        }
    )
    lock = json.dumps(
        {
            "packages": [
                {"name": "monolog/monolog", "version": "3.5.0", "license": ["MIT"]},
                {"name": "acme/pdf", "version": "1.2.0", "license": ["AGPL-3.0-only"]},
                {"name": "dual/lib", "version": "2.0.0", "license": ["GPL-2.0-or-later", "MIT"]},
            ],
            "packages-dev": [{"name": "phpunit/phpunit", "version": "10.5.0", "license": ["BSD-3-Clause"]}],
        }
    )
    output = await _audit(("composer.json", composer), ("composer.lock", lock))

    assert output.data["project_licences"] == ["proprietary"]
    agpl = _finding(output, "acme/pdf")
    assert agpl.severity is Severity.HIGH
    assert "proprietary" in agpl.description
    assert not any("dual/lib" in f.title for f in output.findings)
    assert output.data["by_category"] == {"permissive": 3, "network_copyleft": 1}


async def test_cargo_go_and_ruby_manifests_are_read() -> None:
    cargo_toml = """[package]
name = "tool"
license = "MIT OR Apache-2.0"

[dependencies]
serde = "1.0"
regex = "=1.10.2"
local = { path = "../local" }

[dev-dependencies]
criterion = { version = "0.5" }
"""
    cargo_lock = """version = 3

[[package]]
name = "tool"
version = "0.1.0"

[[package]]
name = "serde"
version = "1.0.197"
source = "registry+https://github.com/rust-lang/crates.io-index"
"""
    go_mod = """module example.test/app

go 1.22

require github.com/lib/pq v1.10.9

require (
\tgolang.org/x/text v0.14.0 // indirect
\tgithub.com/gin-gonic/gin v1.9.1
)
"""
    gemfile_lock = """GEM
  remote: https://rubygems.org/
  specs:
    rack (3.0.9)
    rails (7.1.3)
      rack (>= 2.2.4)

PLATFORMS
  ruby

DEPENDENCIES
  rails (~> 7.1)
"""
    output = await _audit(
        ("cli/Cargo.toml", cargo_toml),
        ("cli/Cargo.lock", cargo_lock),
        ("go.mod", go_mod),
        ("Gemfile.lock", gemfile_lock),
    )

    manifests = {o.data["file"]: o.data for o in output.observations if "kind" in o.data}
    assert manifests["cli/Cargo.toml"]["dependencies"] == 3
    assert manifests["cli/Cargo.toml"]["pinned"] == 1
    assert manifests["cli/Cargo.toml"]["project_licence"] == "MIT OR Apache-2.0"
    assert manifests["cli/Cargo.lock"]["dependencies"] == 1
    assert manifests["go.mod"]["dependencies"] == 3
    assert manifests["Gemfile.lock"]["dependencies"] == 2
    # No table covers these ecosystems and their lock files record no licence: unknown, not guessed.
    unknown = {f.title for f in output.findings if "unknown licence" in f.title}
    assert unknown == {
        "3 cargo dependencies with an unknown licence",
        "3 go dependencies with an unknown licence",
        "2 rubygems dependencies with an unknown licence",
    }
    assert not any("unpinned" in f.title for f in output.findings)


async def test_python_lock_files_and_setup_cfg_are_read() -> None:
    setup_cfg = """[metadata]
name = legacy
classifiers =
    License :: OSI Approved :: BSD License

[options]
install_requires =
    requests>=2
    attrs==23.2.0; python_version >= "3.8"

[options.extras_require]
test = pytest
"""
    pipfile_lock = json.dumps(
        {"default": {"requests": {"version": "==2.31.0"}}, "develop": {"pytest": {"version": "==8.0.0"}}}
    )
    poetry_lock = "\n".join(
        [
            "[[package]]",
            'name = "urllib3"',
            'version = "2.2.1"',
            "",
            "[[package]]",
            'name = "mutagen"',
            'version = "1.47.0"',
        ]
    )
    uv_lock = '[[package]]\nname = "legacy"\nversion = "0.1.0"\nsource = { editable = "." }\n'
    output = await _audit(
        ("setup.cfg", setup_cfg),
        ("Pipfile.lock", pipfile_lock),
        ("poetry.lock", poetry_lock),
        ("uv.lock", uv_lock),
    )

    manifests = {o.data["file"]: o.data for o in output.observations if "kind" in o.data}
    assert manifests["setup.cfg"]["dependencies"] == 3
    assert manifests["setup.cfg"]["by_scope"] == {"runtime": 2, "dev": 1}
    assert manifests["setup.cfg"]["project_licence"] == "License :: OSI Approved :: BSD License"
    assert manifests["Pipfile.lock"]["by_scope"] == {"runtime": 1, "dev": 1}
    assert manifests["uv.lock"]["dependencies"] == 0
    assert output.data["project_licences"] == ["BSD License"]
    assert _finding(output, "mutagen").severity is Severity.MEDIUM
    # setup.cfg's ranges are pinned by the lock files beside it.
    assert not any("unpinned" in f.title for f in output.findings)


async def test_package_lock_v1_is_read_without_licences() -> None:
    lock = json.dumps(
        {
            "lockfileVersion": 1,
            "dependencies": {
                "lodash": {"version": "4.17.21"},
                "gpl-widget": {"version": "1.0.0", "dependencies": {"nested": {"version": "0.1.0"}}},
            },
        }
    )
    output = await _audit(("package-lock.json", lock))

    manifest = output.observations[0]
    assert manifest.data["dependencies"] == 3
    assert manifest.data["notes"] == ["lockfileVersion 1 records no licences"]
    summary = next(o for o in output.observations if "by_source" in o.data)
    assert summary.data["by_source"] == {"bundled table": 1, "none": 2}


# -- SPDX and the table ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "spdx", "category"),
    [
        ("MIT", "MIT", LicenceCategory.PERMISSIVE),
        ("(MIT OR Apache-2.0)", "MIT OR Apache-2.0", LicenceCategory.PERMISSIVE),
        ("MIT/Apache-2.0", "MIT OR Apache-2.0", LicenceCategory.PERMISSIVE),
        ("GPL-3.0+", "GPL-3.0-or-later", LicenceCategory.STRONG_COPYLEFT),
        ("GPL-2.0", "GPL-2.0-only", LicenceCategory.STRONG_COPYLEFT),
        ("GPL-2.0-only WITH Classpath-exception-2.0", None, LicenceCategory.WEAK_COPYLEFT),
        ("LGPL-2.1-or-later", "LGPL-2.1-or-later", LicenceCategory.WEAK_COPYLEFT),
        ("MPL-2.0", "MPL-2.0", LicenceCategory.WEAK_COPYLEFT),
        ("AGPL-3.0", "AGPL-3.0-only", LicenceCategory.NETWORK_COPYLEFT),
        ("SSPL-1.0", "SSPL-1.0", LicenceCategory.NETWORK_COPYLEFT),
        ("BUSL-1.1", "BUSL-1.1", LicenceCategory.NON_COMMERCIAL),
        ("CC-BY-NC-SA-4.0", "CC-BY-NC-SA-4.0", LicenceCategory.NON_COMMERCIAL),
        ("UNLICENSED", None, LicenceCategory.PROPRIETARY),
        ("License :: OSI Approved :: MIT License", "MIT", LicenceCategory.PERMISSIVE),
        ("Apache License, Version 2.0", "Apache-2.0", LicenceCategory.PERMISSIVE),
        ("GNU General Public License v3 (GPLv3)", "GPL-3.0-only", LicenceCategory.STRONG_COPYLEFT),
        ("BSD", None, LicenceCategory.PERMISSIVE),
        ("GPL-3.0-only OR LicenseRef-Commercial", None, LicenceCategory.STRONG_COPYLEFT),
        ("MIT AND GPL-3.0-only", "MIT AND GPL-3.0-only", LicenceCategory.STRONG_COPYLEFT),
        ("MIT AND Custom-1.0", None, LicenceCategory.UNKNOWN),
        ("AGPL-3.0-only AND Custom-1.0", None, LicenceCategory.NETWORK_COPYLEFT),
        ("MIT OR Custom-1.0", None, LicenceCategory.PERMISSIVE),
        ("Custom-1.0", None, LicenceCategory.UNKNOWN),
        ("SEE LICENSE IN LICENSE.md", None, LicenceCategory.UNKNOWN),
        ("Some licence we wrote", None, LicenceCategory.UNKNOWN),
        ("(MIT", None, LicenceCategory.UNKNOWN),
        ("", None, LicenceCategory.UNKNOWN),
    ],
)
def test_licences_are_normalised_and_classified(
    text: str, spdx: str | None, category: LicenceCategory
) -> None:
    info = describe_licence(text)
    assert info.category is category
    if spdx is not None:
        assert info.spdx == spdx


def test_a_linking_exception_keeps_its_spdx_form() -> None:
    assert describe_licence("GPL-2.0-only WITH Classpath-exception-2.0").spdx == (
        "GPL-2.0-only WITH Classpath-exception-2.0"
    )


def test_every_table_entry_is_a_classified_spdx_expression() -> None:
    assert len(PYPI) + len(NPM) >= 400
    for table in (PYPI, NPM):
        for name, licence in table.items():
            info = describe_licence(licence)
            assert info.spdx is not None, (name, licence)
            assert info.category is not LicenceCategory.UNKNOWN, (name, licence)


def test_table_lookups_normalise_names() -> None:
    assert known_licence("pypi", "PyYAML") == "MIT"
    assert known_licence("pypi", "Typing_Extensions") == "PSF-2.0"
    assert known_licence("npm", "React") == "MIT"
    assert known_licence("npm", "@babel/core") == "MIT"
    assert known_licence("cargo", "serde") is None
    assert known_licence("pypi", "surely-not-a-package") is None


def test_licence_texts_are_recognised_by_their_wording() -> None:
    assert identify_licence_text(MIT_TEXT) == "MIT"
    assert identify_licence_text(GPL3_TEXT) == "GPL-3.0-only"
    assert (
        identify_licence_text("GNU AFFERO GENERAL PUBLIC LICENSE\nVersion 3, 19 November 2007")
        == "AGPL-3.0-only"
    )
    assert identify_licence_text("Apache License\nVersion 2.0, January 2004") == "Apache-2.0"
    bsd3 = "Redistribution and use in source and binary forms ... Neither the name of the copyright holder"
    assert identify_licence_text(bsd3) == "BSD-3-Clause"
    assert identify_licence_text("All rights reserved. Do not copy.") is None
    # The GPL's own text names the Affero and Lesser licences further down: the title decides.
    full_gpl = (
        GPL3_TEXT
        + "\n"
        + "terms and conditions " * 100
        + (
            "13. Use with the GNU Affero General Public License. ... use the GNU Lesser General "
            "Public License instead of this License."
        )
    )
    assert identify_licence_text(full_gpl) == "GPL-3.0-only"
    lgpl21 = "GNU LESSER GENERAL PUBLIC LICENSE\n Version 2.1, February 1999"
    assert identify_licence_text(lgpl21) == "LGPL-2.1-only"
