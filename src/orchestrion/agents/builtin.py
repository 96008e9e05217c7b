"""The built-in agents and task types of the core runtime."""

from __future__ import annotations

from orchestrion.agents.batch import BATCH_AGENTS, BATCH_TASK_TYPES
from orchestrion.agents.creative import CREATIVE_AGENTS, CREATIVE_TASK_TYPES
from orchestrion.agents.network_team import NETWORK_TASK_TYPES, NETWORK_TEAM
from orchestrion.agents.spec import AgentSpec, PlaybookCall, TaskTypeSpec
from orchestrion.agents.specialists import FINDINGS_RULES as _FINDINGS_RULES
from orchestrion.agents.specialists import SPECIALIST_TASK_TYPES, SPECIALISTS

CODE_ANALYZER = AgentSpec(
    id="code_analyzer",
    name="Code Analyzer",
    description="Python code metrics and complexity (radon), security lint (bandit) and secret detection.",
    capabilities=("code_quality", "static_analysis", "security_lint", "secret_detection"),
    task_types=("code_analysis", "code_review"),
    system_prompt=(
        "You are a senior code reviewer. From static-analysis evidence about a code base, identify the "
        "most important maintainability and security problems. " + _FINDINGS_RULES
    ),
    tools=("python_metrics", "bandit_scan", "secret_scan"),
    playbooks={
        "code_analysis": (
            PlaybookCall(tool="python_metrics"),
            PlaybookCall(tool="bandit_scan"),
            PlaybookCall(tool="secret_scan"),
        ),
        "code_review": (
            PlaybookCall(tool="python_metrics"),
            PlaybookCall(tool="bandit_scan"),
            PlaybookCall(tool="secret_scan"),
        ),
    },
)

DATA_ANALYST = AgentSpec(
    id="data_analyst",
    name="Data Analyst",
    description="Profiles CSV and JSON data: types, missing values, distributions, outliers, correlations.",
    capabilities=("data_profiling", "statistics", "data_quality"),
    task_types=("data_analysis",),
    system_prompt=(
        "You are a data analyst. From a statistical profile of a data set, identify data-quality problems "
        "and notable patterns. " + _FINDINGS_RULES
    ),
    tools=("data_profile", "secret_scan"),
    playbooks={"data_analysis": (PlaybookCall(tool="data_profile"), PlaybookCall(tool="secret_scan"))},
)

REPORTER = AgentSpec(
    id="reporter",
    name="Reporter",
    description="Aggregates the team's findings into a ranked, evidence-cited report with a quality score.",
    capabilities=("reporting", "summarisation"),
    task_types=(),
    system_prompt=(
        "You write the executive summary of a technical report. Use only the findings given; do not add "
        "new ones. Two to four sentences, most severe first."
    ),
    kind="reporter",
)

BUILTIN_AGENTS = (
    CODE_ANALYZER,
    DATA_ANALYST,
    *SPECIALISTS,
    *NETWORK_TEAM,
    *BATCH_AGENTS,
    *CREATIVE_AGENTS,
    REPORTER,
)

BUILTIN_TASK_TYPES = (
    TaskTypeSpec(
        id="code_analysis",
        description="Metrics, complexity, security lint and secrets over Python code.",
        default_agents=("code_analyzer",),
        needs_inputs=True,
        input_extensions=(".py",),
    ),
    TaskTypeSpec(
        id="code_review",
        description="A review of a code change or code base: the same tools, reported as review comments.",
        default_agents=("code_analyzer",),
        needs_inputs=True,
        input_extensions=(".py",),
    ),
    TaskTypeSpec(
        id="data_analysis",
        description="Profile CSV/JSON data: types, missing values, distributions, outliers, correlations.",
        default_agents=("data_analyst",),
        needs_inputs=True,
        input_extensions=(".csv", ".tsv", ".json", ".jsonl"),
    ),
    *SPECIALIST_TASK_TYPES,
    *NETWORK_TASK_TYPES,
    *BATCH_TASK_TYPES,
    *CREATIVE_TASK_TYPES,
)
