"""Built-in specialists pointed at a target (a host, host:port or URL), and the forensics investigator.

Every network tool reaches the target through the target policy (`tools/targets.py`): private,
loopback, link-local and metadata addresses are refused unless the operator allowlists them, and
active tools (port checks) also need the task's `allow_active_scanning` and the operator's
permission; a refusal is recorded as the tool call's error, never skipped silently.
"""

from __future__ import annotations

from orchestrion.agents.spec import AgentSpec, PlaybookCall, TaskTypeSpec
from orchestrion.agents.specialists import FINDINGS_RULES


def _calls(*tools: str) -> tuple[PlaybookCall, ...]:
    return tuple(PlaybookCall(tool=tool) for tool in tools)


SECURITY_EXPERT = AgentSpec(
    id="security_expert",
    name="Security Expert",
    description=(
        "Audits a web target: TLS certificate and protocols, security headers and cookies, exposed "
        "files, and server banners against a bundled advisory table."
    ),
    capabilities=("web_security", "tls", "vulnerability_assessment"),
    task_types=("security_scan", "vulnerability_assessment"),
    system_prompt=(
        "You are an application security engineer. From audit evidence about a web target, rank the "
        "exploitable weaknesses first and say how to fix each. " + FINDINGS_RULES
    ),
    tools=("tls_audit", "http_headers_audit", "exposed_files", "banner_advisories"),
    playbooks={
        "security_scan": _calls("tls_audit", "http_headers_audit", "exposed_files", "banner_advisories"),
        "vulnerability_assessment": _calls("banner_advisories", "exposed_files", "tls_audit"),
    },
    max_steps=4,
)

NETWORK_ANALYZER = AgentSpec(
    id="network_analyzer",
    name="Network Analyzer",
    description=(
        "Checks a host's TCP ports with service banners (active: needs permission), the TLS versions "
        "and ciphers it offers, and its HTTP redirect chain."
    ),
    capabilities=("network", "ports", "tls", "http"),
    task_types=("network_analysis",),
    system_prompt=(
        "You are a network engineer. From port, TLS and HTTP evidence, say what is exposed that should "
        "not be and what is misconfigured. " + FINDINGS_RULES
    ),
    tools=("port_check", "tls_offer", "http_chain"),
    playbooks={"network_analysis": _calls("port_check", "tls_offer", "http_chain")},
)

OSINT_SPECIALIST = AgentSpec(
    id="osint_specialist",
    name="OSINT Specialist",
    description=(
        "Public information about a domain: DNS records with SPF, DMARC and CAA, robots.txt, "
        "sitemap.xml, security.txt, page metadata, links and e-mail addresses."
    ),
    capabilities=("osint", "dns", "email_security", "reconnaissance"),
    task_types=("intelligence_gathering", "domain_analysis"),
    system_prompt=(
        "You are an OSINT analyst. From public records about a domain, say what it reveals and which "
        "e-mail and DNS protections are missing. " + FINDINGS_RULES
    ),
    tools=("dns_records", "web_intel"),
    playbooks={
        "intelligence_gathering": _calls("dns_records", "web_intel"),
        "domain_analysis": _calls("dns_records", "web_intel"),
    },
)

PERFORMANCE_MONITOR = AgentSpec(
    id="performance_monitor",
    name="Performance Monitor",
    description=(
        "Timed requests to a target (p50/p95/p99, payload sizes, compression and caching headers), and "
        "a resource profile when the target is this host."
    ),
    capabilities=("performance", "latency", "caching"),
    task_types=("performance_analysis",),
    system_prompt=(
        "You are a performance engineer. From timing and header evidence, say what makes the target "
        "slow or heavy and what to change first. " + FINDINGS_RULES
    ),
    tools=("timed_requests", "host_profile"),
    playbooks={"performance_analysis": _calls("timed_requests", "host_profile")},
)

COMPLIANCE_AUDITOR = AgentSpec(
    id="compliance_auditor",
    name="Compliance Auditor",
    description=(
        "Dependency licences from uploaded manifests, configuration secrets and unsafe settings, and "
        "a target's TLS, headers and cookies against a documented OWASP ASVS subset."
    ),
    capabilities=("compliance", "licences", "asvs", "configuration"),
    task_types=("compliance_audit",),
    system_prompt=(
        "You are a compliance auditor. From licence, configuration and ASVS evidence, list the "
        "requirements that fail and what each needs. " + FINDINGS_RULES
    ),
    tools=("licence_audit", "config_secrets", "asvs_web_check"),
    playbooks={"compliance_audit": _calls("licence_audit", "config_secrets", "asvs_web_check")},
)

FORENSICS_INVESTIGATOR = AgentSpec(
    id="forensics_investigator",
    name="Forensics Investigator",
    description=(
        "Triage of uploaded artefacts: hashes, file types by magic bytes, entropy, strings and "
        "indicators, archive listings, image and PDF metadata."
    ),
    capabilities=("forensics", "malware_triage", "metadata"),
    task_types=("forensics", "file_analysis"),
    system_prompt=(
        "You are a forensic analyst. From artefact evidence, say which files are suspicious and why, "
        "and what to do with them. " + FINDINGS_RULES
    ),
    tools=("file_triage", "strings_extract", "archive_listing", "media_metadata"),
    playbooks={
        "forensics": _calls("file_triage", "strings_extract", "archive_listing", "media_metadata"),
        "file_analysis": _calls("file_triage", "strings_extract", "archive_listing", "media_metadata"),
    },
)

NETWORK_TEAM = (
    SECURITY_EXPERT,
    NETWORK_ANALYZER,
    OSINT_SPECIALIST,
    PERFORMANCE_MONITOR,
    COMPLIANCE_AUDITOR,
    FORENSICS_INVESTIGATOR,
)


NETWORK_TASK_TYPES = (
    TaskTypeSpec(
        id="security_scan",
        description="Web security audit of a target: TLS, headers, cookies, exposed files, banners.",
        default_agents=("security_expert",),
        needs_target=True,
    ),
    TaskTypeSpec(
        id="vulnerability_assessment",
        description="Known-vulnerable versions and exposures of a target.",
        default_agents=("security_expert",),
        needs_target=True,
    ),
    TaskTypeSpec(
        id="network_analysis",
        description="Ports and services (active, with permission), TLS offered, HTTP redirects of a host.",
        default_agents=("network_analyzer",),
        needs_target=True,
    ),
    TaskTypeSpec(
        id="intelligence_gathering",
        description="Public information about a domain: DNS, mail protections, published files.",
        default_agents=("osint_specialist",),
        needs_target=True,
    ),
    TaskTypeSpec(
        id="domain_analysis",
        description="A domain's DNS, SPF, DMARC and CAA, and what its site publishes.",
        default_agents=("osint_specialist",),
        needs_target=True,
    ),
    TaskTypeSpec(
        id="performance_analysis",
        description="Latency percentiles, payload sizes, compression and caching of a target.",
        default_agents=("performance_monitor",),
        needs_target=True,
    ),
    TaskTypeSpec(
        id="compliance_audit",
        description="Dependency licences and configuration from uploads; a target against OWASP ASVS.",
        default_agents=("compliance_auditor",),
        needs_inputs=True,
        input_extensions=(".txt", ".toml", ".json", ".lock", ".mod", ".env", ".yaml", ".yml", ".ini"),
    ),
    TaskTypeSpec(
        id="forensics",
        description="Triage uploaded artefacts (upload binaries with encoding base64).",
        default_agents=("forensics_investigator",),
        needs_inputs=True,
    ),
    TaskTypeSpec(
        id="file_analysis",
        description="What an uploaded file is and contains: type, hashes, strings, metadata.",
        default_agents=("forensics_investigator",),
        needs_inputs=True,
    ),
)
