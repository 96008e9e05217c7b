"""The Creative engine's agents and task types: generate many candidates, judge them, pick.

`idea_generator` writes one candidate per step, each from its own angle and temperature;
`idea_judge` scores the candidates on a documented rubric and ranks them (`engines/creative.py`,
`engines/judge.py`, docs/creative.md). Neither uses tools: their work is LLM calls and measurement.
"""

from __future__ import annotations

from orchestrion.agents.spec import AgentSpec, TaskTypeSpec

CREATIVE_GENERATION = "creative_generation"
BRAINSTORMING = "brainstorming"
INNOVATION = "innovation"
CREATIVE_TASK_TYPE_IDS = (CREATIVE_GENERATION, BRAINSTORMING, INNOVATION)
"""The task types the Creative engine runs."""

IDEA_GENERATOR = AgentSpec(
    id="idea_generator",
    name="Idea Generator",
    description=(
        "Writes one candidate answer to a creative brief from an assigned angle (conventional, "
        "contrarian, analogy, constraint-first...) at an assigned sampling temperature."
    ),
    capabilities=("creative_writing", "ideation", "brainstorming"),
    task_types=CREATIVE_TASK_TYPE_IDS,
    system_prompt=(
        "You are an inventive writer. Answer the brief directly from the angle you are given. "
        "No preamble, no lists of alternatives: one answer."
    ),
    kind="generator",
    analysis=False,
)

IDEA_JUDGE = AgentSpec(
    id="idea_judge",
    name="Idea Judge",
    description=(
        "Scores every candidate on a rubric (relevance, specificity, novelty, feasibility, clarity), "
        "ranks them and measures how diverse they are."
    ),
    capabilities=("evaluation", "ranking"),
    task_types=CREATIVE_TASK_TYPE_IDS,
    system_prompt=(
        "You are a strict, fair judge of creative work. Score only what is written; do not reward length."
    ),
    kind="judge",
    analysis=False,
)

CREATIVE_AGENTS = (IDEA_GENERATOR, IDEA_JUDGE)

CREATIVE_TASK_TYPES = (
    TaskTypeSpec(
        id=CREATIVE_GENERATION,
        description=(
            "Write a text (names, taglines, a paragraph...) for `options.brief` (else the title): N "
            "candidates from different angles and temperatures, judged and ranked."
        ),
        default_agents=(IDEA_GENERATOR.id,),
    ),
    TaskTypeSpec(
        id=BRAINSTORMING,
        description=(
            "Many distinct ideas for a problem (`options.brief`, else the title), scored on a rubric, "
            "ranked, with their diversity measured."
        ),
        default_agents=(IDEA_GENERATOR.id,),
    ),
    TaskTypeSpec(
        id=INNOVATION,
        description=(
            "A hybrid pipeline: recall related memories, analyse the inputs with the team of "
            "`options.analysis_task_type` (optional), then generate and judge ideas that use both."
        ),
        default_agents=(IDEA_GENERATOR.id,),
    ),
)
