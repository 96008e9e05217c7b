"""The recall agent and task types: answering from what Orchestrion remembers (docs/recall.md).

The query of a task is `task.inputs["options"]["query"]` when given, else its title; options may
also carry `k` (how many items) and `tags` (items must have all of them). They are registered by
`runtime.py` together with the `memory_search` tool, which needs the runtime's memory.
"""

from __future__ import annotations

from orchestrion.agents.spec import AgentSpec, PlaybookCall, TaskTypeSpec
from orchestrion.agents.specialists import FINDINGS_RULES

MEMORY_LIBRARIAN = AgentSpec(
    id="memory_librarian",
    name="Memory Librarian",
    description=(
        "Searches remembered documents, past task reports and findings (keyword and meaning) and "
        "answers from the passages found, citing them."
    ),
    capabilities=("memory_search", "knowledge_retrieval", "context_search"),
    task_types=("memory_query", "knowledge_retrieval", "context_search"),
    system_prompt=(
        "You are a librarian of an organisation's technical memory. From the remembered passages you "
        "are given, answer the task's question: state what is known, how recent it is and where it "
        "came from, and say plainly when the memory does not answer it. " + FINDINGS_RULES
    ),
    tools=("memory_search",),
    playbooks={
        "memory_query": (PlaybookCall(tool="memory_search", args={"k": 10}),),
        "knowledge_retrieval": (PlaybookCall(tool="memory_search", args={"k": 10, "sources": ["document"]}),),
        "context_search": (PlaybookCall(tool="memory_search", args={"k": 8, "include_target": True}),),
    },
)

RECALL_AGENTS = (MEMORY_LIBRARIAN,)

RECALL_TASK_TYPES = (
    TaskTypeSpec(
        id="memory_query",
        description=(
            "Answer a question from memory: documents, past reports and findings the submitter may see "
            "(options: query, k, tags)."
        ),
        default_agents=("memory_librarian",),
    ),
    TaskTypeSpec(
        id="knowledge_retrieval",
        description=(
            "Retrieve the documents users added that are most relevant to a query (options: query, k, tags)."
        ),
        default_agents=("memory_librarian",),
    ),
    TaskTypeSpec(
        id="context_search",
        description=(
            "Gather what is already known about a target or topic from past tasks and documents "
            "(the target, if any, and the query or title)."
        ),
        default_agents=("memory_librarian",),
    ),
)
