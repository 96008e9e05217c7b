"""The Parallel engine's agents and task types: one map step per item, then one reduce step.

A batch task runs `batch_mapper` once per item (an LLM instruction applied to a text item, or an
existing task type applied to one file or one target) and `batch_reducer` once over every item's
outcome. The engine, its options and limits are described in `docs/parallel.md`.
"""

from __future__ import annotations

from orchestrion.agents.spec import AgentSpec, TaskTypeSpec

PARALLEL_PROCESSING = "parallel_processing"
BATCH_OPERATION = "batch_operation"
CONCURRENT_ANALYSIS = "concurrent_analysis"

BATCH_TASK_TYPE_IDS = (PARALLEL_PROCESSING, BATCH_OPERATION, CONCURRENT_ANALYSIS)
"""The task types the Parallel engine plans."""

BATCH_MAPPER = AgentSpec(
    id="batch_mapper",
    name="Batch Mapper",
    description=(
        "Works on one item of a batch: applies an instruction to a text item with one LLM call, or runs "
        "an existing task type's specialists on one file or one target."
    ),
    capabilities=("batch", "map", "classification", "summarisation", "extraction"),
    task_types=BATCH_TASK_TYPE_IDS,
    system_prompt=(
        "You apply one instruction to one input item and reply with JSON only. Keep the output short and "
        "base it on the item alone."
    ),
    kind="mapper",
)

BATCH_REDUCER = AgentSpec(
    id="batch_reducer",
    name="Batch Reducer",
    description=(
        "Combines every item's outcome into one report: counts, failed items, per-item outputs and "
        "labels, and the items' findings merged and ranked."
    ),
    capabilities=("batch", "reduce", "reporting"),
    task_types=(),
    kind="reducer",
    analysis=False,
)

BATCH_AGENTS = (BATCH_MAPPER, BATCH_REDUCER)

BATCH_TASK_TYPES = (
    TaskTypeSpec(
        id=PARALLEL_PROCESSING,
        description=(
            "Apply an LLM instruction (options.instruction; options.operation: transform, classify, "
            "summarise or extract) to each text item of inputs.items, then report outputs and labels."
        ),
        default_agents=(BATCH_MAPPER.id,),
    ),
    TaskTypeSpec(
        id=BATCH_OPERATION,
        description=(
            "Run a file-based task type (options.operation, e.g. code_analysis, data_analysis, "
            "log_analysis) on each uploaded file or input path separately, then merge the findings."
        ),
        default_agents=(BATCH_MAPPER.id,),
        needs_inputs=True,
    ),
    TaskTypeSpec(
        id=CONCURRENT_ANALYSIS,
        description=(
            "Run a target-based task type (options.operation, e.g. security_scan, domain_analysis) on "
            "each target of inputs.items concurrently, then merge the findings."
        ),
        default_agents=(BATCH_MAPPER.id,),
    ),
)
