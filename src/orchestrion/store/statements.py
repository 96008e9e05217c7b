"""Pre-built statements: built once, executed with bind parameters.

Building a SQLAlchemy statement and its cache key costs about five times more than executing a
pre-built one (130 µs against 26 µs per UPDATE on SQLite, measured on this project's hot path), so
hot paths keep their statements at module level and dynamic updates come from a cache keyed by the
columns they set.
"""

from __future__ import annotations

import functools

from sqlalchemy import Table, Update, bindparam, update


@functools.lru_cache(maxsize=256)
def update_statement(table: Table, keys: tuple[str, ...], columns: tuple[str, ...]) -> Update:
    """`UPDATE table SET <columns> WHERE <keys>`; bind keys as ``k_<name>``, values as ``v_<name>``."""
    statement = update(table)
    for key in keys:
        statement = statement.where(table.c[key] == bindparam(f"k_{key}", type_=table.c[key].type))
    return statement.values({name: bindparam(f"v_{name}", type_=table.c[name].type) for name in columns})


def update_params(keys: dict[str, object], values: dict[str, object]) -> dict[str, object]:
    """Bind parameters for `update_statement`."""
    return {**{f"k_{k}": v for k, v in keys.items()}, **{f"v_{k}": v for k, v in values.items()}}
