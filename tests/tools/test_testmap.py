from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrion.domain.findings import Severity
from orchestrion.exceptions import ToolError
from orchestrion.tools.base import InputFile, Tool, ToolContext, ToolOutput
from orchestrion.tools.pyast import is_test_file, module_name
from orchestrion.tools.testmap import TestMapTool
from orchestrion.tools.testplan import TestPlanTool
from orchestrion.tools.untested import UntestedFunctionsTool

CART = '''"""Shopping cart."""

from __future__ import annotations


class CartError(Exception):
    """Raised for invalid cart operations."""


class Cart:
    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.items: dict[str, int] = {}

    def add(self, sku: str, quantity: int = 1) -> None:
        if quantity <= 0:
            raise CartError("quantity must be positive")
        self.items[sku] = self.items.get(sku, 0) + quantity

    def total(self, prices: dict[str, float], discount: float | None = None) -> float:
        amount = sum(prices[sku] * count for sku, count in self.items.items())
        if discount is not None:
            amount *= 1 - discount
        if amount > 100:
            amount -= 5
        return amount

    def clear(self) -> None:
        self.items.clear()

    def _reset(self) -> None:
        self.items = {}
'''
PRICING = """def apply_tax(amount: float, rate: float = 0.2) -> float:
    return amount * (1 + rate)


def round_price(value: float, *, digits: int = 2, mode: str | None = None) -> float:
    if value < 0:
        raise ValueError("negative price")
    if mode == "up":
        return float(int(value * 10**digits + 1)) / 10**digits
    elif mode is None:
        return round(value, digits)
    return value


def _internal() -> None:
    pass
"""
REPORT = """def render(cart, fmt="text"):
    return str(cart)


class Formatter:
    def format(self, value):
        return str(value)
"""
TEST_PRICING = """import pytest

from shop.pricing import apply_tax


def test_apply_tax():
    assert apply_tax(100) == pytest.approx(120)
"""
TEST_CART = """import unittest

import pytest

from shop import Cart


class CartTests(unittest.TestCase):
    def setUp(self):
        self.cart = Cart("ann")

    def test_add(self):
        self.cart.add("apple", 2)
        self.assertEqual(self.cart.items, {"apple": 2})


@pytest.fixture
def cart():
    return Cart("bob")


class TestCartClearing:
    def test_clear(self, cart):
        cart.clear()
        assert cart.items == {}
"""
SMOKE = """def test_truth():
    assert 1 + 1 == 2
"""
SHOP = {
    "shop/__init__.py": '"""Shop."""\nfrom .cart import Cart\n',
    "shop/cart.py": CART,
    "shop/pricing.py": PRICING,
    "shop/report.py": REPORT,
    "tests/test_pricing.py": TEST_PRICING,
    "tests/test_cart.py": TEST_CART,
    "tests/test_smoke.py": SMOKE,
    "README.md": "# Shop\n",
}


BASE = """class Base:
    def describe(self):
        return "base"
"""
SHAPES = """from lib.base import Base


class Square(Base):
    def area(self):
        return 1

    @property
    def side(self):
        return 1


def make():
    return Square()


def unused():
    pass
"""
UTIL = """def slug(text):
    return text


def shout(text):
    return text.upper()
"""
TEST_SHAPES = """import lib.util as u
from lib.shapes import *
from lib import shapes


def test_chained():
    assert Square().describe() == "base"


def test_annotated(sq: shapes.Square):
    assert sq.side == 1


def test_module_attribute():
    assert u.slug("x") == "x"


def test_local_variable():
    made = shapes.make()
    s = Square()
    assert s.area() == 1
"""
TEST_LOOSE = """from lib.shapes import Square


def test_unknown_receiver(factory):
    assert factory(Square).area() == 1
"""
CLIENT = """import errors


class QuotaError(Exception):
    pass


class Client:
    def __init__(self, url: str, *, timeout: float = 5.0):
        self.url = url

    async def fetch(self, path: str, retries: int = 3, *args, **kwargs):
        if retries > 5:
            raise QuotaError(path)
        if not path:
            raise errors.BadPath(path)
        match path:
            case "/":
                return "root"
        return path

    @staticmethod
    def parse(text):
        return text

    @property
    def host(self) -> str:
        return self.url
"""


def _ctx(files: dict[str, str]) -> ToolContext:
    return ToolContext(
        task_id="t", step_id="s", files=[InputFile(name=n, content=c) for n, c in files.items()]
    )


async def _run(tool: Tool, files: dict[str, str], **args: Any) -> ToolOutput:
    output, _ = await tool.run(args, _ctx(files))
    return output


def _by_location(output: ToolOutput) -> dict[str | None, Any]:
    return {o.location: o for o in output.observations}


def _test_detail(output: ToolOutput, test_id: str) -> dict[str, Any]:
    details = [d for o in output.observations for d in o.data.get("test_details", [])]
    return next(d for d in details if d["id"] == test_id)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("tests/helpers.py", True),
        ("pkg/test_mod.py", True),
        ("pkg/mod_test.py", True),
        ("conftest.py", True),
        ("app/tests.py", True),
        ("pkg/testing.py", False),
        ("pkg/contest.py", False),
    ],
)
def test_test_files_are_recognised_by_name_and_folder(name: str, expected: bool) -> None:
    assert is_test_file(name) is expected


def test_module_names_follow_packages_and_strip_source_roots() -> None:
    packages = frozenset({"src/pkg", "src/pkg/sub"})

    assert module_name("src/pkg/sub/mod.py", packages) == "pkg.sub.mod"
    assert module_name("src/pkg/__init__.py", packages) == "pkg"
    assert module_name("src/app/mod.py", packages) == "app.mod"
    assert module_name("tool.py", packages) == "tool"


async def test_map_reports_static_reference_coverage_per_module() -> None:
    output = await _run(TestMapTool(), SHOP)

    overall = output.observations[0]
    assert overall.summary == (
        "Static reference coverage: 4/10 public callables (40.0%) in 4 modules are referenced by 4 tests "
        "in 3 test files (not line coverage)"
    )
    by_location = _by_location(output)
    cart = by_location["shop/cart.py"]
    assert (
        cart.summary
        == "shop/cart.py: 3/5 public callables referenced by tests (60.0% static reference coverage)"
    )
    assert cart.data["referenced_by"] == {
        "Cart": [
            "tests/test_cart.py::CartTests::test_add",
            "tests/test_cart.py::TestCartClearing::test_clear",
        ],
        "Cart.add": ["tests/test_cart.py::CartTests::test_add"],
        "Cart.clear": ["tests/test_cart.py::TestCartClearing::test_clear"],
    }
    assert cart.data["unreferenced"] == [
        {"name": "CartError", "kind": "class", "line": 6},
        {"name": "Cart.total", "kind": "method", "line": 20},
    ]
    assert by_location["shop/pricing.py"].data["ratio"] == 0.5
    assert by_location["shop/report.py"].data["referenced"] == 0
    assert "shop/__init__.py" not in by_location  # Re-exports only: nothing public is defined there.
    assert output.data["ratio"] == 0.4
    assert "not line coverage" in output.data["measure"]


async def test_map_links_unittest_setup_state_and_pytest_fixtures_to_methods() -> None:
    output = await _run(TestMapTool(), SHOP)

    unittest_case = _test_detail(output, "tests/test_cart.py::CartTests::test_add")
    assert unittest_case["style"] == "unittest"
    assert unittest_case["line"] == 12
    assert unittest_case["references"] == ["shop.cart.Cart", "shop.cart.Cart.add"]
    pytest_case = _test_detail(output, "tests/test_cart.py::TestCartClearing::test_clear")
    assert pytest_case["style"] == "pytest"
    assert pytest_case["references"] == ["shop.cart.Cart", "shop.cart.Cart.clear"]
    test_file = _by_location(output)["tests/test_cart.py"]
    assert (
        test_file.summary
        == "tests/test_cart.py: 2 tests (1 pytest, 1 unittest) reference 3 callables under test"
    )
    assert test_file.data["imports"] == ["shop.Cart"]


async def test_map_follows_aliases_attribute_calls_star_imports_and_inheritance() -> None:
    files = {
        "lib/__init__.py": "",
        "lib/base.py": BASE,
        "lib/shapes.py": SHAPES,
        "lib/util.py": UTIL,
        "tests/test_shapes.py": TEST_SHAPES,
        "tests/test_loose.py": TEST_LOOSE,
    }

    output = await _run(TestMapTool(), files)

    def refs(test: str) -> list[str]:
        return list(_test_detail(output, test)["references"])

    assert refs("tests/test_shapes.py::test_chained") == ["lib.base.Base.describe", "lib.shapes.Square"]
    assert refs("tests/test_shapes.py::test_annotated") == ["lib.shapes.Square", "lib.shapes.Square.side"]
    assert refs("tests/test_shapes.py::test_module_attribute") == ["lib.util.slug"]
    assert refs("tests/test_shapes.py::test_local_variable") == [
        "lib.shapes.Square",
        "lib.shapes.Square.area",
        "lib.shapes.make",
    ]
    # A method called on a value of unknown type counts when the test uses a class that has it.
    assert refs("tests/test_loose.py::test_unknown_receiver") == [
        "lib.shapes.Square",
        "lib.shapes.Square.area",
    ]
    by_location = _by_location(output)
    assert by_location["lib/shapes.py"].data["unreferenced"] == [
        {"name": "unused", "kind": "function", "line": 17}
    ]
    assert by_location["lib/util.py"].data["unreferenced"] == [
        {"name": "shout", "kind": "function", "line": 5}
    ]


async def test_map_findings_cite_the_observations_that_prove_them() -> None:
    output = await _run(TestMapTool(), SHOP)

    findings = {f.title: f for f in output.findings}
    assert set(findings) == {
        "No test references shop/report.py",
        "Low static test reference coverage (40.0%)",
        "Tests in tests/test_smoke.py reference no code under test",
    }
    untested_module = findings["No test references shop/report.py"]
    assert untested_module.severity is Severity.MEDIUM
    assert "render, Formatter, Formatter.format" in untested_module.description
    [index] = untested_module.observation_indexes
    assert output.observations[index].location == "shop/report.py"
    low = findings["Low static test reference coverage (40.0%)"]
    assert low.severity is Severity.LOW
    assert [output.observations[i].location for i in low.observation_indexes] == [None, "shop/report.py"]
    smoke = findings["Tests in tests/test_smoke.py reference no code under test"]
    assert smoke.severity is Severity.INFO
    assert output.observations[smoke.observation_indexes[0]].location == "tests/test_smoke.py"


async def test_map_without_tests_raises_one_finding_and_honours_low_ratio() -> None:
    code_only = {k: v for k, v in SHOP.items() if not k.startswith("tests/")}

    output = await _run(TestMapTool(), code_only)

    [finding] = output.findings
    assert finding.title == "No tests found"
    assert finding.severity is Severity.MEDIUM
    assert finding.observation_indexes == (0,)
    relaxed = await _run(TestMapTool(), SHOP, low_ratio=0.3)
    assert not [f for f in relaxed.findings if f.title.startswith("Low static")]


async def test_map_reports_unparseable_files_and_skips_non_python() -> None:
    output = await _run(TestMapTool(), {**SHOP, "shop/broken.py": "def oops(:\n"})

    assert output.observations[0].data["parse_errors"] == [
        {"file": "shop/broken.py", "error": "SyntaxError at line 1"}
    ]
    assert output.data["skipped_non_python"] == 1


async def test_untested_functions_are_ranked_by_complexity_then_size() -> None:
    branchy = "def dispatch(x):\n" + "".join(f"    if x == {i}:\n        return {i}\n" for i in range(12))
    files = {**SHOP, "shop/router.py": branchy + "    return -1\n"}

    output = await _run(UntestedFunctionsTool(), files)

    listed = [(o.data["name"], o.location, o.data["complexity"]) for o in output.observations[1:]]
    assert listed == [
        ("shop.router.dispatch", "shop/router.py:1", 13),
        ("shop.pricing.round_price", "shop/pricing.py:5", 4),
        ("shop.cart.Cart.total", "shop/cart.py:20", 4),
        ("shop.report.render", "shop/report.py:1", 1),
        ("shop.report.Formatter.format", "shop/report.py:6", 1),
    ]
    assert output.observations[1].summary == (
        "shop.router.dispatch (function) at shop/router.py:1: complexity 13, 26 lines, "
        "not referenced by any test"
    )
    assert output.data["total_untested"] == 5
    assert output.data["total_functions"] == 8
    [finding] = output.findings
    assert finding.title == "Complex untested function shop.router.dispatch (shop/router.py:1)"
    assert finding.severity is Severity.MEDIUM
    assert finding.observation_indexes == (1,)


async def test_untested_functions_honour_the_limit_and_reject_bad_arguments() -> None:
    output = await _run(UntestedFunctionsTool(), SHOP, limit=2)

    assert len(output.observations) == 3
    assert output.data["total_untested"] == 4
    with pytest.raises(ToolError, match="invalid arguments for untested_functions"):
        await _run(UntestedFunctionsTool(), SHOP, limit=0)


async def test_plan_writes_parseable_skeletons_with_imports_raises_branches_and_none_cases() -> None:
    output = await _run(TestPlanTool(), SHOP)

    skeletons = output.data["skeletons"]
    assert set(skeletons) == {
        "tests/test_shop_pricing.py",
        "tests/test_shop_cart.py",
        "tests/test_shop_report.py",
    }
    for code in skeletons.values():
        ast.parse(code)
    pricing = skeletons["tests/test_shop_pricing.py"]
    assert "from shop.pricing import round_price\n" in pricing
    assert '    ("value", "digits", "mode", "expected"),\n' in pricing
    assert '        pytest.param(1.0, 2, "text", ..., id="typical"),\n' in pricing
    assert '        pytest.param(0.0, 0, "", ..., id="boundary"),\n' in pricing
    assert "    with pytest.raises(ValueError):\n        round_price(" in pricing
    assert "    result = round_price(1.0, digits=2, mode=None)\n" in pricing
    tests = [n.name for n in ast.parse(pricing).body if isinstance(n, ast.FunctionDef)]
    assert tests == [
        "test_round_price",
        "test_round_price_raises_valueerror",
        "test_round_price_with_mode_none",
        "test_round_price_when_mode_eq_up",
        "test_round_price_when_mode_is_none",
    ]
    # The `value < 0` branch only raises, so the pytest.raises case already covers it.
    assert "when value < 0" in pricing
    cart = skeletons["tests/test_shop_cart.py"]
    assert "from shop.cart import Cart\n" in cart
    assert '    instance = Cart("text")\n    result = instance.total(prices, discount=discount)\n' in cart


async def test_plan_observations_locate_each_planned_callable() -> None:
    output = await _run(TestPlanTool(), SHOP, limit=2)

    assert [o.location for o in output.observations] == ["shop/pricing.py:5", "shop/cart.py:20"]
    first = output.observations[0]
    assert first.summary == (
        "Planned 5 tests for shop.pricing.round_price (shop/pricing.py:5): "
        "1 typical, 1 raises, 1 none, 2 branch"
    )
    assert first.data["skeleton"] == "tests/test_shop_pricing.py"
    assert first.data["tests"][1] == {
        "name": "test_round_price_raises_valueerror",
        "kind": "raises",
        "detail": "raises ValueError when value < 0",
        "line": 7,
    }
    assert output.data["not_planned"] == ["shop.report.render", "shop.report.Formatter.format"]
    assert "## `shop.pricing.round_price` (shop/pricing.py:5, complexity 4, 8 lines)" in output.data["plan"]
    assert output.findings == ()


async def test_plan_imports_module_exceptions_and_handles_async_static_and_property_targets() -> None:
    files = {
        "svc/__init__.py": "",
        "svc/client.py": CLIENT,
        "tests/test_svc_client.py": "def test_nothing():\n    pass\n",
    }

    output = await _run(TestPlanTool(), files)

    [(path, code)] = output.data["skeletons"].items()
    assert path == "tests/test_svc_client_plan.py"  # The obvious name is taken in the upload.
    tree = ast.parse(code)
    [imported] = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "svc.client"]
    assert [a.name for a in imported.names] == ["Client", "QuotaError", "errors"]
    assert (
        '@SKELETON\n@pytest.mark.asyncio\n@pytest.mark.parametrize(\n    ("path", "retries", "expected")'
        in code
    )
    assert '    instance = Client("https://example.com", timeout=5.0)\n' in code
    assert "    result = await instance.fetch(path, retries=retries)\n" in code
    assert "    with pytest.raises(QuotaError):\n" in code
    assert "    with pytest.raises(errors.BadPath):\n" in code
    assert "def test_client_fetch_when_path_matches" in code
    assert "    result = Client.parse(text)\n" in code
    assert "    result = instance.host\n" in code


def test_plan_skeletons_collect_and_skip_under_pytest(tmp_path: Path) -> None:
    from orchestrion.tools.testplan import plan_tests

    output = plan_tests([InputFile(name=n, content=c) for n, c in SHOP.items()])
    for name, content in [*SHOP.items(), *output.data["skeletons"].items()]:
        if not name.startswith("tests/test_") or name in output.data["skeletons"]:
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text(content)
    planned = [str(tmp_path / p) for p in output.data["skeletons"]]

    # The skeletons themselves are run here (never by the tool) to prove they import and collect.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            *planned,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "15 skipped" in result.stdout


async def test_tools_never_import_or_run_the_code(tmp_path: Path) -> None:
    marker = tmp_path / "imported.txt"
    danger = (
        f"open({str(marker)!r}, 'w').write('ran')\nraise SystemExit('imported')\n\n\n"
        "def boom(flag=None):\n    if flag:\n        raise RuntimeError('boom')\n    return 1\n"
    )
    files = {
        "trap/__init__.py": "",
        "trap/danger.py": danger,
        "tests/test_danger.py": "from trap.danger import boom\n\n\ndef test_boom():\n    boom()\n",
    }

    for tool in (TestMapTool(), UntestedFunctionsTool(), TestPlanTool()):
        await _run(tool, files)
    mapped = await _run(TestMapTool(), {**files, "tests/test_danger.py": "def test_x():\n    pass\n"})

    assert not marker.exists()
    assert "trap" not in sys.modules and "trap.danger" not in sys.modules
    assert mapped.observations[1].data["unreferenced"] == [{"name": "boom", "kind": "function", "line": 5}]


async def test_plan_renames_parameters_that_clash_with_skeleton_or_pytest_names() -> None:
    source = "def handle(request, expected, result=None):\n    return request\n"

    output = await _run(TestPlanTool(), {"web.py": source})

    code = output.data["skeletons"]["tests/test_web.py"]
    ast.parse(code)
    assert '    ("request_value", "expected_value", "result_value", "expected"),\n' in code
    assert "    result = handle(request_value, expected_value, result=result_value)\n" in code


async def test_plan_stays_within_the_data_cap_and_keeps_the_top_of_the_ranking() -> None:
    def big(i: int) -> str:
        params = ", ".join(f"option_{n}: int = {n}" for n in range(8))
        branches = "".join(f"    if option_{n} > {i}:\n        raise ValueError({n})\n" for n in range(8))
        return f"def big_{i:02}({params}):\n{branches}    return 0\n"

    files = {"heavy.py": "\n\n".join(big(i) for i in range(60))}

    output = await _run(TestPlanTool(), files, limit=50)

    assert set(output.data) >= {"skeletons", "plan"}  # Not replaced by the base class's truncation marker.
    assert len(json.dumps(output.data)) <= TestPlanTool.max_data_bytes
    planned = output.data["planned"]
    assert 0 < planned < 50
    assert len(output.observations) == planned
    assert len(output.data["not_planned"]) == 20  # 60 - planned were left out; 20 are listed.
    ast.parse(output.data["skeletons"]["tests/test_heavy.py"])
