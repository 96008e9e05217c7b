"""Built-in specialists that work on uploaded artefacts: logs, test suites and documentation.

Each is data: its task types, the tools it may call and, per task type, the deterministic playbook
whose observations become the evidence its LLM analysis must cite.
"""

from __future__ import annotations

from orchestrion.agents.spec import AgentSpec, PlaybookCall, TaskTypeSpec

FINDINGS_RULES = (
    "Base every finding on the numbered evidence you are given and cite its ids. "
    "Do not invent evidence. Prefer a few precise findings to many vague ones."
)

_LOG_PLAYBOOK = (
    PlaybookCall(tool="log_parse"),
    PlaybookCall(tool="log_bruteforce"),
    PlaybookCall(tool="log_error_bursts"),
    PlaybookCall(tool="log_timeline"),
)

INCIDENT_RESPONDER = AgentSpec(
    id="incident_responder",
    name="Incident Responder",
    description=(
        "Parses common log formats, detects brute force, enumeration and error bursts, and builds a "
        "timeline of suspicious events."
    ),
    capabilities=("log_analysis", "incident_response", "threat_detection", "timeline"),
    task_types=("incident_response", "log_analysis"),
    system_prompt=(
        "You are an incident responder. From log evidence, say what happened, when, from where, and "
        "whether an attacker likely succeeded; recommend containment. " + FINDINGS_RULES
    ),
    tools=("log_parse", "log_bruteforce", "log_error_bursts", "log_timeline", "secret_scan"),
    playbooks={
        "incident_response": (*_LOG_PLAYBOOK, PlaybookCall(tool="secret_scan")),
        "log_analysis": _LOG_PLAYBOOK,
    },
)

TESTING_COORDINATOR = AgentSpec(
    id="testing_coordinator",
    name="Testing Coordinator",
    description=(
        "Maps tests to code by static analysis, lists untested public functions by risk, and writes a "
        "test plan with pytest skeletons."
    ),
    capabilities=("test_planning", "static_analysis", "coverage_mapping"),
    task_types=("testing",),
    system_prompt=(
        "You are a test lead. From a static map of tests to code, say where the test suite is weakest "
        "and which tests to write first. " + FINDINGS_RULES
    ),
    tools=("test_map", "untested_functions", "test_plan", "python_metrics"),
    playbooks={
        "testing": (
            PlaybookCall(tool="test_map"),
            PlaybookCall(tool="untested_functions"),
            PlaybookCall(tool="test_plan"),
        )
    },
)

DOCUMENTATION_SPECIALIST = AgentSpec(
    id="documentation_specialist",
    name="Documentation Specialist",
    description=(
        "Measures docstring coverage and accuracy, checks the README's structure, and generates an API "
        "reference from the code."
    ),
    capabilities=("documentation", "docstring_coverage", "api_reference"),
    task_types=("documentation",),
    system_prompt=(
        "You are a technical writer. From documentation evidence, say what a new user or contributor "
        "would miss, most important first. " + FINDINGS_RULES
    ),
    tools=("docstring_coverage", "readme_check", "api_reference"),
    playbooks={
        "documentation": (
            PlaybookCall(tool="docstring_coverage"),
            PlaybookCall(tool="readme_check"),
            PlaybookCall(tool="api_reference"),
        )
    },
)

SPECIALISTS = (INCIDENT_RESPONDER, TESTING_COORDINATOR, DOCUMENTATION_SPECIALIST)

SPECIALIST_TASK_TYPES = (
    TaskTypeSpec(
        id="incident_response",
        description="Investigate an incident from logs and configuration: what happened, when, from where.",
        default_agents=("incident_responder",),
        needs_inputs=True,
        input_extensions=(".log", ".txt", ".json", ".jsonl"),
    ),
    TaskTypeSpec(
        id="log_analysis",
        description="Brute force, enumeration and error bursts in logs, and a timeline of suspicious events.",
        default_agents=("incident_responder",),
        needs_inputs=True,
        input_extensions=(".log", ".txt", ".json", ".jsonl"),
    ),
    TaskTypeSpec(
        id="testing",
        description="Map tests to code, list what is untested, and plan the tests to write.",
        default_agents=("testing_coordinator",),
        needs_inputs=True,
        input_extensions=(".py",),
    ),
    TaskTypeSpec(
        id="documentation",
        description="Docstring coverage and accuracy, README structure, a generated API reference.",
        default_agents=("documentation_specialist",),
        needs_inputs=True,
        input_extensions=(".py", ".md", ".rst", ".txt"),
    ),
)
