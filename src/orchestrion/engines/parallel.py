"""The Parallel engine's planning: validate a batch, then plan one map step per item and a reduce.

A batch is a list of items: text items (`parallel_processing`), uploaded files and input paths
(`batch_operation`) or targets (`concurrent_analysis`). Each item becomes a map step
(`item-00000`, `item-00001`...) with no dependencies, so the DAG engine runs them with bounded
concurrency (the engine's, lowered by `options.concurrency`) and checkpoints each one; the `reduce`
step depends on all of them with trigger ``all_done``, so it runs even when some items failed and
reads every map run, including runs checkpointed before a retry. What the steps do is in
`engines/parallel_steps.py`; the semantics are documented in `docs/parallel.md`.

Duplicates: targets and files are refused when they repeat (the same work twice, and the report would
count one host or file twice); text items may repeat (a batch of rows legitimately does), and each
gets its own step and its own output by index.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from orchestrion.agents.batch import (
    BATCH_MAPPER,
    BATCH_OPERATION,
    BATCH_REDUCER,
    BATCH_TASK_TYPE_IDS,
    CONCURRENT_ANALYSIS,
    PARALLEL_PROCESSING,
)
from orchestrion.agents.registry import AgentRegistry
from orchestrion.domain.intelligence import Selection
from orchestrion.domain.tasks import Plan, Step
from orchestrion.engines.steps import item_step_id
from orchestrion.exceptions import UnknownChoiceError, ValidationError
from orchestrion.tools.targets import Target

REDUCE_STEP = "reduce"
"""The id of the reduce step, the last step of every batch plan."""

LLM_OPERATIONS = ("transform", "classify", "summarise", "extract")
"""`parallel_processing` operations: how the instruction's output is shaped (docs/parallel.md)."""

DEFAULT_LLM_OPERATION = "transform"

MAX_ITEM_CHARS = 4000
"""The longest text item accepted: one item is one short LLM prompt."""

MAX_INSTRUCTION_CHARS = 2000

DEFAULT_MAX_CONCURRENCY = 16
"""The map steps in flight per task when the runtime passes no limit (ORCHESTRION_PARALLEL_CONCURRENCY)."""

_OPTIONS = {
    PARALLEL_PROCESSING: ("operation", "instruction", "concurrency"),
    BATCH_OPERATION: ("operation", "concurrency"),
    CONCURRENT_ANALYSIS: ("operation", "concurrency"),
}


def is_batch_task_type(task_type: str) -> bool:
    """Whether `task_type` is planned by the Parallel engine."""
    return task_type in BATCH_TASK_TYPE_IDS


def batch_operations(registry: AgentRegistry, task_type: str) -> list[str]:
    """The valid `options.operation` values of a batch task type, sorted.

    `parallel_processing` shapes an LLM instruction (`LLM_OPERATIONS`); `batch_operation` runs any
    registered task type that works on input files, `concurrent_analysis` any that works on a target,
    as long as its default team is made of specialists (batch types cannot nest).
    """
    if task_type == PARALLEL_PROCESSING:
        return list(LLM_OPERATIONS)
    wanted = {BATCH_OPERATION: "needs_inputs", CONCURRENT_ANALYSIS: "needs_target"}.get(task_type)
    if wanted is None:
        return []
    found = []
    for spec in registry.task_types.values():
        if spec.id in BATCH_TASK_TYPE_IDS or not getattr(spec, wanted) or not spec.default_agents:
            continue
        agents = [registry.agents.get(agent_id) for agent_id in spec.default_agents]
        if all(a is not None and a.kind == "specialist" for a in agents):
            found.append(spec.id)
    return sorted(found)


def validate_batch(
    registry: AgentRegistry,
    *,
    task_type: str,
    items: Sequence[str] | None,
    file_names: Sequence[str],
    options: Mapping[str, Any] | None,
    max_items: int,
    parse_target: Callable[[str], Target],
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
) -> tuple[list[str], dict[str, Any]]:
    """Check a batch submission and return its items and engine options, normalised.

    Args:
        registry: Agents and task types (the operations are task types).
        task_type: One of `BATCH_TASK_TYPE_IDS`.
        items: `inputs.items` as submitted.
        file_names: The uploaded files' names, then the input paths as submitted: the items of a
            `batch_operation` (one map step per file or path).
        options: `options` as submitted (None values already dropped).
        max_items: The most items a batch may have (ORCHESTRION_PARALLEL_MAX_ITEMS).
        parse_target: Parses a target as `TargetPolicy.parse_target` does (ValidationError if bad).
        max_concurrency: The engine's map concurrency (ORCHESTRION_PARALLEL_CONCURRENCY), the most
            `options.concurrency` may ask for.

    Returns:
        The items (stripped targets, file names, or text items as given) and the options
        (`operation`, `instruction` for `parallel_processing`, and `concurrency`, filled with the
        engine's when not given).

    Raises:
        ValidationError: No items, more than `max_items` (the message and details name the limit),
            an item that is empty, too long, a malformed target or a duplicate target or file, a
            missing instruction, an option the task type does not use, or a concurrency outside
            1..`max_concurrency`; `field` names the offender (``inputs.items[3]``...).
        UnknownChoiceError: An operation the task type cannot run; `choices` lists the valid ones.
    """
    if not is_batch_task_type(task_type):
        raise UnknownChoiceError(
            field="task_type", value=task_type, choices=list(BATCH_TASK_TYPE_IDS), code="unknown_task_type"
        )
    given = dict(options or {})
    allowed = _OPTIONS[task_type]
    for key in given:
        if key not in allowed:
            raise ValidationError(
                f"options.{key} is not used by {task_type}; its options are: {', '.join(allowed)}",
                field=f"options.{key}",
                choices=allowed,
            )
    normalised: dict[str, Any] = {"operation": _operation(registry, task_type, given.get("operation"))}
    if task_type == PARALLEL_PROCESSING:
        normalised["instruction"] = _instruction(given.get("instruction"))
    normalised["concurrency"] = _concurrency(given.get("concurrency"), max_concurrency)

    if task_type == BATCH_OPERATION:
        if items:
            raise ValidationError(
                "batch_operation takes its items from inputs.files and inputs.paths (one per file or "
                "path); leave inputs.items empty",
                field="inputs.items",
            )
        raw = list(file_names)
        field = "inputs"
    else:
        raw = list(items or [])
        field = "inputs.items"
    if not raw:
        what = "inputs.files or inputs.paths" if task_type == BATCH_OPERATION else "inputs.items"
        raise ValidationError(f"{task_type} needs at least one item in {what}", field=field)
    if len(raw) > max_items:
        raise ValidationError(
            f"too many items: {len(raw)} is more than the limit of {max_items} items per batch "
            "(ORCHESTRION_PARALLEL_MAX_ITEMS); split the batch",
            field=field,
            details={"limit": max_items, "count": len(raw)},
        )
    if task_type == PARALLEL_PROCESSING:
        return [_text_item(item, i) for i, item in enumerate(raw)], normalised
    if task_type == CONCURRENT_ANALYSIS:
        return _targets(raw, parse_target), normalised
    return _files(raw), normalised


def _operation(registry: AgentRegistry, task_type: str, value: object) -> str:
    choices = batch_operations(registry, task_type)
    if value is None and task_type == PARALLEL_PROCESSING:
        return DEFAULT_LLM_OPERATION
    if value is None:
        raise ValidationError(
            f"{task_type} needs options.operation: the task type to run on each item; valid operations: "
            + ", ".join(choices),
            field="options.operation",
            choices=choices,
        )
    if not isinstance(value, str) or value not in choices:
        raise UnknownChoiceError(field="options.operation", value=str(value), choices=choices)
    return value


def _instruction(value: object) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValidationError(
            "parallel_processing needs options.instruction: what to do with each item, e.g. "
            "'Classify the sentiment as positive, negative or neutral'",
            field="options.instruction",
        )
    if not isinstance(value, str):
        raise ValidationError("options.instruction must be a string", field="options.instruction")
    text = value.strip()
    if len(text) > MAX_INSTRUCTION_CHARS:
        raise ValidationError(
            f"options.instruction is {len(text)} characters; the limit is {MAX_INSTRUCTION_CHARS}",
            field="options.instruction",
            details={"limit": MAX_INSTRUCTION_CHARS},
        )
    return text


def _concurrency(value: object, maximum: int) -> int:
    if value is None:
        return maximum
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise ValidationError(
            f"options.concurrency must be an integer from 1 to {maximum} (ORCHESTRION_PARALLEL_CONCURRENCY)",
            field="options.concurrency",
            details={"min": 1, "max": maximum},
        )
    return value


def _text_item(item: object, index: int) -> str:
    field = f"inputs.items[{index}]"
    if not isinstance(item, str):
        raise ValidationError("each item must be a string", field=field)
    if not item.strip():
        raise ValidationError("the item is empty", field=field)
    if len(item) > MAX_ITEM_CHARS:
        raise ValidationError(
            f"the item is {len(item)} characters; the limit is {MAX_ITEM_CHARS} per item",
            field=field,
            details={"limit": MAX_ITEM_CHARS},
        )
    return item


def _targets(raw: Sequence[object], parse_target: Callable[[str], Target]) -> list[str]:
    items: list[str] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        field = f"inputs.items[{index}]"
        if not isinstance(item, str):
            raise ValidationError("each item must be a target string", field=field)
        try:
            target = parse_target(item)
        except ValidationError as exc:
            raise ValidationError(exc.message, field=field, details={"value": item[:200]}) from exc
        key = target.url.lower()
        if key in seen:
            raise ValidationError(
                f"duplicate target {item.strip()!r}: the same as inputs.items[{seen[key]}]",
                field=field,
                details={"duplicate_of": seen[key]},
            )
        seen[key] = index
        items.append(item.strip())
    return items


def _files(raw: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    for index, name in enumerate(raw):
        if name in seen:
            raise ValidationError(
                f"{name!r} is given twice (as an uploaded file name or an input path)",
                field="inputs",
                details={"duplicate_of": seen[name], "index": index},
            )
        seen[name] = index
    return list(raw)


def build_parallel_plan(
    registry: AgentRegistry,
    *,
    items: Sequence[str],
    options: Mapping[str, Any],
    step_timeout: float,
    max_retries: int,
    selection: Selection,
) -> Plan:
    """One map step per item (`item_step_id(i)`, no dependencies), then the `reduce` step.

    The reduce step depends on every map step with trigger ``all_done``: it runs whatever the items'
    outcomes, and a retry of the task re-runs it after the failed items.
    """
    mapper = registry.agent(BATCH_MAPPER.id)
    reducer = registry.agent(BATCH_REDUCER.id)
    map_timeout = mapper.timeout_seconds or step_timeout
    map_retries = mapper.max_retries if mapper.max_retries is not None else max_retries
    steps = [
        Step(id=item_step_id(i), agent_id=mapper.id, timeout_seconds=map_timeout, max_retries=map_retries)
        for i in range(len(items))
    ]
    steps.append(
        Step(
            id=REDUCE_STEP,
            agent_id=reducer.id,
            depends_on=tuple(step.id for step in steps),
            trigger="all_done",
            timeout_seconds=reducer.timeout_seconds or step_timeout,
            max_retries=reducer.max_retries if reducer.max_retries is not None else max_retries,
        )
    )
    reason = (
        f"parallel engine: {len(items)} map step(s) ({options.get('operation')}), at most "
        f"{options.get('concurrency')} in flight, then a reduce over every item"
    )
    plan = Plan(steps=tuple(steps), reasons=(*selection.reasons, reason), selection=selection)
    plan.validate()
    return plan
