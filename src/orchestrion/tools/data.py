"""Tabular data profiling (CSV, TSV, JSON, JSON Lines) with the standard library only."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import combinations
from typing import Any, ClassVar

from orchestrion.domain.findings import Severity
from orchestrion.tools.base import (
    InputFile,
    Observation,
    ProposedFinding,
    Tool,
    ToolArgs,
    ToolContext,
    ToolOutput,
)

MAX_ROWS = 200_000
_CORRELATION_MAX_COLUMNS = 20
_CORRELATION_MAX_ROWS = 20_000
_NOTABLE_R = 0.7
_DUPLICATE_R = 0.95
_MISSING = frozenset({"", "na", "n/a", "null", "none", "nan"})
_BOOLEANS = frozenset({"true", "false", "yes", "no", "t", "f"})
_INTEGER = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EXTENSIONS = (".csv", ".tsv", ".json", ".jsonl")


class DataFileError(ValueError):
    """A data file that cannot be read as a table."""


@dataclass(frozen=True, kw_only=True)
class Table:
    """A parsed table: header and rows of text cells ("" for missing), possibly truncated."""

    columns: tuple[str, ...]
    rows: list[tuple[str, ...]]
    truncated: bool = False


class DataProfileTool(Tool):
    """Column types, missing values, distributions, outliers and correlations of tabular files."""

    name: ClassVar[str] = "data_profile"
    description: ClassVar[str] = (
        "Profile CSV, TSV, JSON and JSON Lines files: per-column type, missing values, unique counts, "
        "numeric statistics and IQR outliers, top values, duplicate rows and strong correlations."
    )

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Profile every tabular file in the task's inputs."""
        return await asyncio.to_thread(profile_files, ctx.files)


def profile_files(files: Sequence[InputFile]) -> ToolOutput:
    """Blocking body of `DataProfileTool`."""
    observations: list[Observation] = []
    findings: list[ProposedFinding] = []
    summaries: dict[str, Any] = {}
    tabular = [f for f in files if f.name.lower().endswith(_EXTENSIONS)]
    for file in tabular:
        try:
            table = parse_table(file)
        except DataFileError as exc:
            observations.append(
                Observation(
                    summary=f"{file.name}: could not be parsed ({exc})",
                    data={"file": file.name, "error": str(exc)},
                    location=file.name,
                )
            )
            findings.append(
                ProposedFinding(
                    title=f"Unparseable data file {file.name}",
                    severity=Severity.MEDIUM,
                    description=f"{file.name} could not be read as a table: {exc}.",
                    recommendation="Fix the file's format so it can be loaded and validated.",
                    observation_indexes=(len(observations) - 1,),
                )
            )
            summaries[file.name] = {"error": str(exc)}
            continue
        summaries[file.name] = _profile_table(file.name, table, observations, findings)
    return ToolOutput(
        observations=tuple(observations),
        findings=tuple(findings),
        data={"files": summaries, "skipped_non_tabular": len(files) - len(tabular), "max_rows": MAX_ROWS},
    )


def parse_table(file: InputFile) -> Table:
    """Parse a CSV/TSV/JSON/JSONL input into a `Table`, raising `DataFileError` if it is not one."""
    lowered = file.name.lower()
    if lowered.endswith(".jsonl"):
        records: list[Any] = []
        for number, line in enumerate(file.content.splitlines(), start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataFileError(f"invalid JSON on line {number}: {exc.msg}") from exc
        return _records_table(records)
    if lowered.endswith(".json"):
        try:
            document = json.loads(file.content)
        except json.JSONDecodeError as exc:
            raise DataFileError(f"invalid JSON at line {exc.lineno}: {exc.msg}") from exc
        if isinstance(document, dict):
            lists = [value for value in document.values() if isinstance(value, list)]
            if len(lists) != 1:
                raise DataFileError("expected a list of objects, or an object holding exactly one such list")
            document = lists[0]
        if not isinstance(document, list):
            raise DataFileError("expected a list of objects")
        return _records_table(document)
    return _delimited_table(file.content, default="\t" if lowered.endswith(".tsv") else ",")


def _records_table(records: Sequence[Any]) -> Table:
    if not records or not all(isinstance(r, dict) for r in records):
        raise DataFileError("expected a non-empty list of objects")
    columns: dict[str, None] = {}
    for record in records[:MAX_ROWS]:
        columns.update(dict.fromkeys(str(k) for k in record))
    rows = [tuple(_cell(record.get(c)) for c in columns) for record in records[:MAX_ROWS]]
    return Table(columns=tuple(columns), rows=rows, truncated=len(records) > MAX_ROWS)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _delimited_table(content: str, *, default: str) -> Table:
    if not content.strip():
        raise DataFileError("the file is empty")
    delimiter = default
    if default not in content.split("\n", 1)[0]:
        try:
            delimiter = csv.Sniffer().sniff(content[:65536], delimiters=",;\t|").delimiter
        except csv.Error:
            pass  # One column, or nothing the sniffer recognises: keep the default.
    rows: list[tuple[str, ...]] = []
    truncated = False
    try:
        reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter)
        header = next(reader, None)
        for record in reader:
            if len(rows) >= MAX_ROWS:
                truncated = True
                break
            if record:
                rows.append(tuple(record))
    except csv.Error as exc:
        raise DataFileError(f"malformed delimited text: {exc}") from exc
    if not header or not any(h.strip() for h in header):
        raise DataFileError("no header row")
    names: list[str] = []
    for index, raw in enumerate(header):
        name = raw.strip() or f"column_{index + 1}"
        names.append(name if name not in names else f"{name}_{index + 1}")
    width = len(names)
    if rows and sum(len(r) != width for r in rows) > len(rows) // 2:
        raise DataFileError(f"most rows do not have the header's {width} fields")
    rows = [r[:width] if len(r) >= width else r + ("",) * (width - len(r)) for r in rows]
    return Table(columns=tuple(names), rows=rows, truncated=truncated)


def is_missing(value: str) -> bool:
    """Whether a cell counts as missing (empty, NA, N/A, null, None, NaN)."""
    return value.strip().lower() in _MISSING


def infer_type(values: Sequence[str]) -> str:
    """The narrowest of integer, float, boolean, datetime and string that fits every present value."""
    if not values:
        return "empty"
    stripped = [v.strip() for v in values]
    if all(_INTEGER.fullmatch(v) for v in stripped):
        return "integer"
    if all(_FLOAT.fullmatch(v) for v in stripped):
        return "float"
    if all(v.lower() in _BOOLEANS for v in stripped):
        return "boolean"
    if all(_ISO_DATE.match(v) and _parse_datetime(v) for v in stripped):
        return "datetime"
    return "string"


def _parse_datetime(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _profile_table(
    name: str, table: Table, obs: list[Observation], findings: list[ProposedFinding]
) -> dict[str, Any]:
    n_rows, n_cols = len(table.rows), len(table.columns)
    duplicates = n_rows - len(set(table.rows))
    note = f" (truncated at {MAX_ROWS} rows)" if table.truncated else ""
    obs.append(
        Observation(
            summary=f"{name}: {n_rows} rows x {n_cols} columns, {duplicates} duplicate rows{note}",
            data={
                "file": name,
                "rows": n_rows,
                "columns": list(table.columns),
                "duplicate_rows": duplicates,
                "truncated": table.truncated,
            },
            location=name,
        )
    )
    if duplicates:
        findings.append(
            _finding(
                f"{duplicates} duplicate rows in {name}",
                Severity.LOW,
                len(obs) - 1,
                f"{duplicates} of {n_rows} rows repeat an earlier row exactly.",
                "Check whether the duplicates are expected; deduplicate before analysis.",
            )
        )
    numeric: dict[str, list[float | None]] = {}
    for index, column in enumerate(table.columns):
        cells = [row[index] for row in table.rows]
        profile, numbers = _profile_column(cells)
        if numbers is not None:
            numeric[column] = numbers
        obs.append(
            Observation(
                summary=f"{name}.{column}: {_column_summary(profile)}",
                data={"file": name, "column": column, **profile},
                location=f"{name}:{column}",
            )
        )
        _column_findings(name, column, profile, n_rows, len(obs) - 1, findings)
    for a, b, r in correlations(numeric):
        obs.append(
            Observation(
                summary=f"{name}: {a} and {b} correlate (r={r:.3f})",
                data={"file": name, "columns": [a, b], "pearson_r": round(r, 4)},
                location=f"{name}:{a},{b}",
            )
        )
        if abs(r) >= _DUPLICATE_R:
            findings.append(
                _finding(
                    f"Near-duplicate columns {a} and {b} in {name}",
                    Severity.INFO,
                    len(obs) - 1,
                    f"Pearson r = {r:.3f}: one column almost determines the other.",
                    "Drop or derive one of them to avoid redundant or leaking features.",
                )
            )
    return {"rows": n_rows, "columns": n_cols, "duplicate_rows": duplicates, "truncated": table.truncated}


def _profile_column(cells: Sequence[str]) -> tuple[dict[str, Any], list[float | None] | None]:
    present = [(row, v) for row, v in enumerate(cells, start=1) if not is_missing(v)]
    values = [v.strip() for _, v in present]
    kind = infer_type(values)
    if kind in ("integer", "float") and not all(math.isfinite(float(v)) for v in values):
        kind = "string"  # Values like 1e999 overflow to infinity; statistics would be meaningless.
    missing = len(cells) - len(present)
    profile: dict[str, Any] = {
        "type": kind,
        "count": len(cells),
        "missing": missing,
        "missing_ratio": round(missing / len(cells), 4) if cells else 0.0,
        "unique": len(set(values)),
    }
    if kind not in ("integer", "float"):
        if kind == "datetime":
            moments = sorted(str(_parse_datetime(v)) for v in values)
            profile.update(min=moments[0], max=moments[-1])
        profile["top_values"] = [[v[:80], n] for v, n in Counter(values).most_common(5)]
        return profile, None
    numbers = [float(v) for v in values]
    as_int = int if kind == "integer" else float
    profile.update(
        min=as_int(min(numbers)),
        max=as_int(max(numbers)),
        mean=statistics.fmean(numbers),
        median=statistics.median(numbers),
    )
    if len(numbers) >= 2:
        q1, q2, q3 = statistics.quantiles(numbers, n=4, method="inclusive")
        low, high = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
        outliers = [row for (row, _), x in zip(present, numbers, strict=True) if x < low or x > high]
        profile.update(
            stdev=statistics.stdev(numbers),
            quartiles=[q1, q2, q3],
            outliers=len(outliers),
            outlier_rows=outliers[:5],
        )
    for key in ("mean", "median", "stdev"):
        if key in profile:
            profile[key] = round(profile[key], 6)
    by_row: list[float | None] = [None] * len(cells)
    for (row, _), x in zip(present, numbers, strict=True):
        by_row[row - 1] = x
    return profile, by_row


def _column_summary(profile: dict[str, Any]) -> str:
    text = f"{profile['type']}, {profile['missing']} missing ({profile['missing_ratio']:.0%}), "
    text += f"{profile['unique']} unique"
    if "mean" in profile:
        text += f", min {profile['min']:g}, max {profile['max']:g}, mean {profile['mean']:g}"
    if profile.get("outliers"):
        text += f", {profile['outliers']} outliers"
    return text


def _column_findings(
    name: str, column: str, profile: dict[str, Any], n_rows: int, index: int, findings: list[ProposedFinding]
) -> None:
    ratio = profile["missing_ratio"]
    if ratio > 0.05:
        findings.append(
            _finding(
                f"High missing rate in column {column} ({ratio:.0%})",
                Severity.MEDIUM if ratio > 0.2 else Severity.LOW,
                index,
                f"{profile['missing']} of {n_rows} values of {name}.{column} are missing.",
                "Find out why values are missing; impute, drop or flag them explicitly before analysis.",
            )
        )
    outliers = profile.get("outliers", 0)
    if n_rows and outliers / n_rows > 0.01:
        findings.append(
            _finding(
                f"Outliers in column {column} ({outliers} rows)",
                Severity.LOW,
                index,
                f"{outliers} values of {name}.{column} are beyond 1.5 IQR (rows {profile['outlier_rows']}).",
                "Check these rows for entry errors or unit mix-ups; use robust statistics if they are real.",
            )
        )
    if n_rows > 1 and profile["unique"] == 1:
        findings.append(
            _finding(
                f"Constant column {column} in {name}",
                Severity.INFO,
                index,
                f"Every present value of {name}.{column} is the same.",
                "Drop the column if it carries no information.",
            )
        )


def _finding(
    title: str, severity: Severity, index: int, description: str, recommendation: str
) -> ProposedFinding:
    return ProposedFinding(
        title=title,
        severity=severity,
        description=description,
        recommendation=recommendation,
        observation_indexes=(index,),
    )


def correlations(numeric: dict[str, list[float | None]]) -> list[tuple[str, str, float]]:
    """Pairs of numeric columns with |Pearson r| >= 0.7, on a row sample if the table is large."""
    names = list(numeric)[:_CORRELATION_MAX_COLUMNS]
    notable: list[tuple[str, str, float]] = []
    for a, b in combinations(names, 2):
        pairs = [
            (x, y) for x, y in zip(numeric[a], numeric[b], strict=True) if x is not None and y is not None
        ]
        step = max(1, len(pairs) // _CORRELATION_MAX_ROWS)
        pairs = pairs[::step]
        if len(pairs) < 3:
            continue
        try:
            r = statistics.correlation([x for x, _ in pairs], [y for _, y in pairs])
        except statistics.StatisticsError:
            continue  # A constant column has no correlation.
        if abs(r) >= _NOTABLE_R:
            notable.append((a, b, r))
    return notable
