from __future__ import annotations

import json

import pytest

from orchestrion.domain.findings import Severity
from orchestrion.tools import data as data_module
from orchestrion.tools.base import InputFile, ToolContext, ToolOutput
from orchestrion.tools.data import DataProfileTool, infer_type, is_missing

CSV = """x,double,city,score,country
1,2,Paris,10,FR
2,4,,11,FR
3,6,Lyon,12,FR
4,8,NA,10,FR
5,10,Nice,11,FR
6,12,Paris,12,FR
7,14,,10,FR
8,16,Lyon,11,FR
9,18,Paris,500,FR
10,20,Nice,12,FR
10,20,Nice,12,FR
"""


async def _profile(*files: tuple[str, str]) -> ToolOutput:
    ctx = ToolContext(task_id="t", step_id="s", files=[InputFile(name=n, content=c) for n, c in files])
    output, _ = await DataProfileTool().run({}, ctx)
    return output


def _column(output: ToolOutput, column: str) -> dict[str, object]:
    return next(o.data for o in output.observations if o.data.get("column") == column)


async def test_csv_shape_is_observed_per_file() -> None:
    output = await _profile(("sales.csv", CSV), ("notes.md", "# not data"))

    shape = output.observations[0]
    assert shape.summary == "sales.csv: 11 rows x 5 columns, 1 duplicate rows"
    assert shape.data["columns"] == ["x", "double", "city", "score", "country"]
    assert output.data["skipped_non_tabular"] == 1
    assert output.data["files"]["sales.csv"] == {
        "rows": 11,
        "columns": 5,
        "duplicate_rows": 1,
        "truncated": False,
    }


async def test_numeric_columns_get_statistics_and_iqr_outliers() -> None:
    output = await _profile(("sales.csv", CSV))

    score = _column(output, "score")
    assert score["type"] == "integer"
    assert (score["min"], score["max"], score["median"]) == (10, 500, 11.0)
    assert score["quartiles"] == [10.5, 11.0, 12.0]
    assert score["outliers"] == 1
    assert score["outlier_rows"] == [9]
    assert _column(output, "x")["mean"] == pytest.approx(65 / 11)


async def test_string_columns_get_missing_counts_and_top_values() -> None:
    output = await _profile(("sales.csv", CSV))

    city = _column(output, "city")
    assert city["type"] == "string"
    assert (city["missing"], city["missing_ratio"], city["unique"]) == (3, 0.2727, 3)
    assert city["top_values"] == [["Paris", 3], ["Nice", 3], ["Lyon", 2]]


async def test_findings_cover_missing_outliers_constants_duplicates_and_correlation() -> None:
    output = await _profile(("sales.csv", CSV))

    findings = {f.title: f.severity for f in output.findings}
    assert findings == {
        "1 duplicate rows in sales.csv": Severity.LOW,
        "High missing rate in column city (27%)": Severity.MEDIUM,
        "Outliers in column score (1 rows)": Severity.LOW,
        "Constant column country in sales.csv": Severity.INFO,
        "Near-duplicate columns x and double in sales.csv": Severity.INFO,
    }
    correlation = next(o for o in output.observations if "correlate" in o.summary)
    assert correlation.summary == "sales.csv: x and double correlate (r=1.000)"
    assert correlation.data["pearson_r"] == 1.0


async def test_moderate_missing_rate_is_low_and_small_is_ignored() -> None:
    rows = [f"{i},{'' if i < 3 else 'v'},{'' if i == 0 else 'w'}" for i in range(20)]
    output = await _profile(("m.csv", "n,a,b\n" + "\n".join(rows)))

    missing = [(f.title, f.severity) for f in output.findings if f.title.startswith("High missing")]
    assert missing == [("High missing rate in column a (15%)", Severity.LOW)]


async def test_json_list_of_objects_is_profiled_with_types() -> None:
    records = [
        {"id": 1, "active": True, "joined": "2024-01-05", "ratio": 0.5, "note": None},
        {"id": 2, "active": False, "joined": "2024-02-10T12:00:00+00:00", "ratio": 1.5, "note": "x"},
        {"id": 3, "active": True, "joined": "2024-03-15", "ratio": 2.5},
    ]
    output = await _profile(("users.json", json.dumps({"users": records})))

    types = {o.data["column"]: o.data["type"] for o in output.observations if "column" in o.data}
    assert types == {
        "id": "integer",
        "active": "boolean",
        "joined": "datetime",
        "ratio": "float",
        "note": "string",
    }
    assert _column(output, "note")["missing"] == 2
    assert _column(output, "joined")["min"] == "2024-01-05 00:00:00"


async def test_jsonl_and_tsv_files_are_read() -> None:
    jsonl = '{"a": 1, "b": "x"}\n\n{"a": 2, "b": "y"}\n'
    tsv = "a\tb\n1\tx\n2\ty\n3\tz\n"

    output = await _profile(("events.jsonl", jsonl), ("table.tsv", tsv))

    assert output.data["files"]["events.jsonl"]["rows"] == 2
    assert output.data["files"]["table.tsv"] == {
        "rows": 3,
        "columns": 2,
        "duplicate_rows": 0,
        "truncated": False,
    }


async def test_semicolon_csv_is_sniffed() -> None:
    output = await _profile(("eu.csv", "a;b\n1;2\n3;4\n5;7\n"))

    assert output.observations[0].data["columns"] == ["a", "b"]


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("broken.json", '{"rows": [1,', "invalid JSON at line 1"),
        ("scalars.json", "[1, 2, 3]", "expected a non-empty list of objects"),
        ("events.jsonl", '{"a": 1}\nnot json\n', "invalid JSON on line 2"),
        ("empty.csv", "   \n", "the file is empty"),
    ],
)
async def test_unparseable_files_are_medium_findings(name: str, content: str, reason: str) -> None:
    output = await _profile((name, content))

    [observation] = output.observations
    assert reason in observation.summary
    [finding] = output.findings
    assert (finding.title, finding.severity) == (f"Unparseable data file {name}", Severity.MEDIUM)


async def test_rows_beyond_the_cap_are_dropped_and_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data_module, "MAX_ROWS", 5)

    output = await _profile(("big.csv", "n\n" + "\n".join(str(i) for i in range(12))))

    assert (
        output.observations[0].summary
        == "big.csv: 5 rows x 1 columns, 0 duplicate rows (truncated at 5 rows)"
    )
    assert output.data["files"]["big.csv"]["truncated"] is True


def test_missing_markers_and_type_inference() -> None:
    assert all(is_missing(v) for v in ["", " ", "NA", "n/a", "null", "None", "NaN"])
    assert not is_missing("0")
    assert infer_type(["1", "-2", "+3"]) == "integer"
    assert infer_type(["1", "2.5", "1e3"]) == "float"
    assert infer_type(["yes", "No", "TRUE"]) == "boolean"
    assert infer_type(["2024-01-01", "2024-12-31T23:59:59Z"]) == "datetime"
    assert infer_type(["2024-13-45"]) == "string"
    assert infer_type([]) == "empty"


async def test_numbers_overflowing_to_infinity_are_profiled_as_strings() -> None:
    output = await _profile(("huge.csv", "v\n1\n1e999\n2\n"))

    assert _column(output, "v")["type"] == "string"
