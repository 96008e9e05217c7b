from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrion.domain.findings import Severity
from orchestrion.tools.base import InputFile, Tool, ToolContext, ToolOutput
from orchestrion.tools.docs import (
    ApiReferenceTool,
    DocstringCoverageTool,
    docstring_style,
    documented_params,
)
from orchestrion.tools.readme import ReadmeCheckTool

API = '''"""Public API of the package.

More details here.
"""

from __future__ import annotations


class Store:
    """A key-value store.

    Args:
        path: Where to persist.
        mode: Not a parameter of __init__.
    """

    def __init__(self, path: str, *, readonly: bool = False) -> None:
        self.path = path

    def get(self, key: str, default: str | None = None) -> str | None:
        """Read a key.

        Args:
            key (str): The key.
            fallback: Returned when missing.
                A continuation line, not an entry.

        Returns:
            The value.
        """
        return default

    def put(self, key, value):
        return None

    @property
    def size(self) -> int:
        """Number of keys."""
        return 0

    @size.setter
    def size(self, value: int) -> None:
        pass

    def _private(self):
        pass


def load(path: str, /, encoding: str = "utf-8", *args: str, strict: bool = True, **options: int) -> Store:
    """Load a store.

    Parameters
    ----------
    path : str
        Where.
    encoding, strict : str
        Options.

    Returns
    -------
    Store
    """
    return Store(path)


def save(store, target):
    """Save a store.

    :param store: The store.
    :param str destination: Wrong name.
    """


async def fetch(url: str) -> bytes:
    return b""


def _helper():
    pass
'''
BARE = "import os\n\n\ndef one():\n    pass\n\n\ndef two():\n    pass\n\n\nclass Three:\n    pass\n"
FULL_README = """<h1 align="center">Widget</h1>

Widgets for everyone.

## Installation

```bash
pip install widget
```

## Quickstart

```python
import widget
widget.run()
```

### Configuration

Set `WIDGET_HOME`. See [the config docs](docs/config.md#env) and the [examples](examples/).

## License

Apache-2.0, see [LICENSE](LICENSE).
"""
SPARSE_README = """## Widget

Some text with a [missing link](docs/missing.md), an [anchor](#top), [external](https://example.com),
![logo](./img/logo.png) and a [parent](../outside.md).

#### Details

```
[not a link](inside/code.md)
```

## Usage

Run it.
"""
RST_README = """======
Widget
======

Install
-------

.. code-block:: bash

   pip install widget

Usage
-----

Example::

    import widget

License
-------

MIT. See `the docs <docs/index.rst>`_.
"""


def _ctx(files: dict[str, str]) -> ToolContext:
    inputs = [InputFile(name=n, content=c) for n, c in files.items()]
    return ToolContext(task_id="t", step_id="s", files=inputs)


async def _run(tool: Tool, files: dict[str, str], **args: Any) -> ToolOutput:
    output, _ = await tool.run(args, _ctx(files))
    return output


def _line(source: str, text: str) -> int:
    return next(n for n, line in enumerate(source.splitlines(), start=1) if text in line)


def _cited(output: ToolOutput, title: str) -> list[str | None]:
    finding = next(f for f in output.findings if f.title == title)
    return [output.observations[i].location for i in finding.observation_indexes]


@pytest.mark.parametrize(
    ("doc", "style", "params"),
    [
        ("Do it.\n\nArgs:\n    a: One.\n    *args: Rest.\n\nReturns:\n    None.", "google", ["a", "args"]),
        (
            "Do it.\n\nParameters\n----------\nx, y : int\n    Coords.\n\nNotes\n-----\nz : no",
            "numpy",
            ["x", "y"],
        ),
        ("Do it.\n\n:param a: One.\n:param int b: Two.\n:returns: None.", "rest", ["a", "b"]),
        ("Do it.\n\nReturns:\n    None.", "google", None),
        ("Just a sentence.", "plain", None),
    ],
)
def test_docstring_styles_and_parameter_sections_are_recognised(
    doc: str, style: str, params: list[str] | None
) -> None:
    assert docstring_style(doc) == style
    assert documented_params(doc, style) == params


async def test_docstring_coverage_counts_public_objects_and_lists_missing_ones() -> None:
    output = await _run(DocstringCoverageTool(), {"pkg/__init__.py": "", "pkg/api.py": API})

    overall = output.observations[0]
    assert overall.summary == (
        "Docstring coverage: 6/8 public objects documented (75.0%) in 2 modules; dominant style google"
    )
    assert overall.data["by_kind"] == {
        "module": {"documented": 1, "total": 1},
        "class": {"documented": 1, "total": 1},
        "function": {"documented": 2, "total": 3},
        "method": {"documented": 2, "total": 3},
    }
    module = output.observations[1]
    assert module.location == "pkg/api.py"
    assert module.summary == "pkg/api.py: 6/8 public objects documented (75.0%)"
    assert module.data["missing"] == [
        {"name": "Store.put", "kind": "method", "location": f"pkg/api.py:{_line(API, 'def put')}"},
        {"name": "fetch", "kind": "function", "location": f"pkg/api.py:{_line(API, 'async def fetch')}"},
    ]
    assert module.data["styles"] == {"plain": 2, "google": 2, "numpy": 1, "rest": 1}
    assert output.data["coverage"] == 75.0


async def test_docstring_coverage_reports_param_drift_in_google_numpy_and_rest_docstrings() -> None:
    output = await _run(DocstringCoverageTool(), {"pkg/api.py": API})

    drift = {o.data["name"]: o for o in output.observations if "nonexistent" in o.data}
    assert set(drift) == {"Store", "Store.get", "load", "save"}
    get = drift["Store.get"]
    assert get.location == f"pkg/api.py:{_line(API, 'def get')}"
    assert (
        get.summary
        == f"{get.location} Store.get: google-style docstring documents nonexistent fallback; omits default"
    )
    assert drift["Store"].data["nonexistent"] == ["mode"]
    assert drift["Store"].data["undocumented"] == ["readonly"]
    assert drift["load"].data["style"] == "numpy"
    assert drift["load"].data["undocumented"] == ["args", "options"]
    assert drift["save"].data["nonexistent"] == ["destination"]
    assert drift["save"].data["undocumented"] == ["target"]
    nonexistent = f"Docstring of Store.get documents nonexistent parameters ({get.location})"
    omitted = f"Docstring of Store.get omits parameters ({get.location})"
    titles = {f.title: f for f in output.findings}
    assert titles[nonexistent].severity is Severity.LOW
    assert titles[nonexistent].description == "Documented but not in the signature: fallback."
    assert titles[omitted].description == "In the signature but not documented: default."
    assert _cited(output, nonexistent) == [get.location]
    assert _cited(output, omitted) == [get.location]


async def test_docstring_coverage_findings_grade_low_coverage_and_mixed_styles() -> None:
    mostly = await _run(DocstringCoverageTool(), {"pkg/api.py": API})
    bare = await _run(DocstringCoverageTool(), {"pkg/bare.py": BARE, "pkg/api.py": API})
    empty = await _run(DocstringCoverageTool(), {"pkg/bare.py": BARE})

    assert mostly.findings[0].title == "Low docstring coverage (75.0%)"
    assert mostly.findings[0].severity is Severity.LOW
    assert _cited(mostly, "Low docstring coverage (75.0%)") == [None, "pkg/api.py"]
    assert bare.findings[0].title == "Low docstring coverage (50.0%)"
    assert _cited(bare, "Low docstring coverage (50.0%)") == [None, "pkg/api.py", "pkg/bare.py"]
    assert empty.findings[0].title == "Low docstring coverage (0.0%)"
    assert empty.findings[0].severity is Severity.MEDIUM
    mixed = next(f for f in mostly.findings if f.title == "Mixed docstring styles")
    assert mixed.severity is Severity.INFO
    assert mixed.description == "Docstrings mix styles: google 2, numpy 1, rest 1"
    assert mixed.observation_indexes == (0,)


async def test_docstring_coverage_skips_tests_unless_asked() -> None:
    files = {"pkg/api.py": API, "tests/test_api.py": "def test_load():\n    pass\n"}

    default = await _run(DocstringCoverageTool(), files)
    with_tests = await _run(DocstringCoverageTool(), files, include_tests=True)

    assert default.data["total"] == 8
    assert with_tests.data["total"] == 10
    assert "tests/test_api.py:1 test_load" in with_tests.data["missing"]


async def test_readme_with_every_essential_has_no_findings() -> None:
    files = {
        "README.md": FULL_README,
        "docs/config.md": "# Config\n",
        "examples/demo.py": "print('hi')\n",
        "LICENSE": "Apache",
    }

    output = await _run(ReadmeCheckTool(), files)

    assert output.findings == ()
    [overview] = output.observations
    assert overview.location == "README.md"
    assert overview.data["checks"] == dict.fromkeys(
        ("title", "install", "usage", "usage_code_block", "configuration", "license"), True
    )
    assert [(h["level"], h["text"], h["line"]) for h in overview.data["headings"]] == [
        (1, "Widget", 1),
        (2, "Installation", 5),
        (2, "Quickstart", 11),
        (3, "Configuration", 18),
        (2, "License", 22),
    ]
    assert overview.data["relative_links"] == 3


async def test_readme_missing_sections_broken_links_and_heading_jumps_become_findings() -> None:
    output = await _run(ReadmeCheckTool(), {"README.md": SPARSE_README, "docs/other.md": "x"})

    findings = {f.title: f.severity for f in output.findings}
    assert findings == {
        "README has no title": Severity.LOW,
        "README has no installation instructions": Severity.MEDIUM,
        "README usage section has no code example": Severity.LOW,
        "README does not document configuration": Severity.INFO,
        "README does not mention a license": Severity.LOW,
        "README links to 3 files missing from the upload": Severity.LOW,
        "README heading levels skip a level": Severity.INFO,
    }
    assert _cited(output, "README has no installation instructions") == ["README.md"]
    assert _cited(output, "README links to 3 files missing from the upload") == [
        "README.md:3",
        "README.md:4",
        "README.md:4",
    ]
    links = [o.data["target"] for o in output.observations if "target" in o.data]
    assert links == ["docs/missing.md", "./img/logo.png", "../outside.md"]
    assert (
        output.observations[2].summary
        == "README.md:4: relative link ./img/logo.png points to no uploaded file"
    )
    assert _cited(output, "README heading levels skip a level") == ["README.md:6"]
    assert output.observations[4].summary == "README.md:6: heading 'Details' jumps from level 2 to 4"


async def test_readme_in_restructuredtext_is_parsed_by_its_own_rules() -> None:
    output = await _run(ReadmeCheckTool(), {"README.rst": RST_README, "docs/README.md": "# Nested\n"})

    overview = output.observations[0]
    assert overview.location == "README.rst"
    assert overview.data["format"] == "rst"
    assert overview.data["other_readmes"] == ["docs/README.md"]
    assert [(h["level"], h["text"]) for h in overview.data["headings"]] == [
        (1, "Widget"),
        (2, "Install"),
        (2, "Usage"),
        (2, "License"),
    ]
    checks = overview.data["checks"]
    assert checks["usage_code_block"] and checks["install"] and checks["license"] and checks["title"]
    titles = [f.title for f in output.findings]
    assert titles == [
        "README does not document configuration",
        "README links to 1 files missing from the upload",
    ]
    assert output.observations[1].location == "README.rst:22"


async def test_plain_text_readme_takes_its_first_short_line_as_title() -> None:
    text = "Widget\n\nInstall it with pip install widget. Licensed MIT.\n"

    output = await _run(ReadmeCheckTool(), {"README.txt": text})

    checks = output.observations[0].data["checks"]
    assert output.observations[0].data["format"] == "text"
    assert checks["title"] and checks["install"] and checks["license"] and not checks["usage"]


async def test_missing_readme_is_a_medium_finding() -> None:
    output = await _run(ReadmeCheckTool(), {"pkg/api.py": API})

    [finding] = output.findings
    assert finding.title == "No README"
    assert finding.severity is Severity.MEDIUM
    assert output.observations[finding.observation_indexes[0]].summary == "No README among 1 uploaded files"


async def test_api_reference_renders_signatures_and_first_docstring_paragraphs() -> None:
    files = {"pkg/__init__.py": "", "pkg/api.py": API, "tests/test_api.py": "def test_x():\n    pass\n"}

    output = await _run(ApiReferenceTool(), files)

    markdown = output.data["markdown"]
    assert markdown.startswith(
        "# API reference\n\n## `pkg.api`\n\n`pkg/api.py`: Public API of the package.\n"
    )
    assert "More details here" not in markdown
    assert (
        "### class `Store`\n\n```python\nclass Store\n"
        "    def __init__(self, path: str, *, readonly: bool = False) -> None\n```\n\nA key-value store.\n"
    ) in markdown
    assert (
        "def load(path: str, /, encoding: str = 'utf-8', *args: str, strict: bool = True, "
        "**options: int) -> Store"
    ) in markdown
    assert (
        "#### `Store.size`\n\n```python\n@property\ndef size(self) -> int\n```\n\nNumber of keys.\n"
        in markdown
    )
    assert (
        "### `fetch`\n\n```python\nasync def fetch(url: str) -> bytes\n```\n\n*No docstring.*\n" in markdown
    )
    assert "def put(self, key, value)" in markdown
    assert "_helper" not in markdown and "_private" not in markdown and "test_x" not in markdown
    [observation] = output.observations
    assert observation.location == "pkg/api.py"
    assert observation.summary == (
        "pkg/api.py: module pkg.api with 1 classes, 3 functions, 3 methods (2 without docstrings)"
    )
    assert observation.data["undocumented"] == ["Store.put", "fetch"]


async def test_api_reference_includes_private_names_and_tests_on_request() -> None:
    files = {"pkg/api.py": API, "tests/test_api.py": "def test_x():\n    pass\n"}

    output = await _run(ApiReferenceTool(), files, include_private=True, include_tests=True)

    markdown = output.data["markdown"]
    assert "### `_helper`" in markdown and "#### `Store._private`" in markdown
    assert "## `tests.test_api`" in markdown


async def test_api_reference_is_capped_by_whole_modules() -> None:
    files = {f"pkg/mod{i:02}.py": API for i in range(12)}

    output = await _run(ApiReferenceTool(), files, max_chars=5_000)

    markdown = output.data["markdown"]
    assert len(json.dumps(markdown)) <= 5_000 + 200
    assert output.data["truncated"] is True
    included = [o for o in output.observations if o.data["included"]]
    omitted = [o for o in output.observations if not o.data["included"]]
    assert len(included) + len(omitted) == 12
    assert output.data["omitted_modules"] == [o.data["module"] for o in omitted]
    assert omitted[0].summary.endswith("; left out of the reference by the size cap")
    assert markdown.endswith(f"*{len(omitted)} more modules left out to stay under 5000 characters.*\n")
    big = await _run(ApiReferenceTool(), files, max_chars=48_000)
    assert "markdown" in big.data  # The tool's own cap keeps the data intact at the largest size.


async def test_docs_tools_never_import_or_run_the_code(tmp_path: Path) -> None:
    marker = tmp_path / "imported.txt"
    danger = (
        f'"""Trap."""\n\nopen({str(marker)!r}, "w").write("ran")\nraise SystemExit("imported")\n\n\n'
        "def boom():\n    pass\n"
    )
    files = {"trap/danger.py": danger, "README.md": "# Trap\n"}

    for tool in (DocstringCoverageTool(), ReadmeCheckTool(), ApiReferenceTool()):
        await _run(tool, files)
    reference = await _run(ApiReferenceTool(), files)

    assert not marker.exists()
    assert "trap" not in sys.modules and "trap.danger" not in sys.modules
    assert "def boom()" in reference.data["markdown"]
