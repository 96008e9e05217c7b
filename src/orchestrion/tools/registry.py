"""The built-in tools, keyed by name."""

from __future__ import annotations

from orchestrion.tools.advisories import BannerAdvisoryTool
from orchestrion.tools.asvs import AsvsWebCheckTool
from orchestrion.tools.base import Tool
from orchestrion.tools.code import BanditTool, PythonMetricsTool
from orchestrion.tools.compliance import ConfigSecretsTool
from orchestrion.tools.data import DataProfileTool
from orchestrion.tools.docs import ApiReferenceTool, DocstringCoverageTool
from orchestrion.tools.exposed_files import ExposedFilesTool
from orchestrion.tools.forensics import ArchiveListingTool, FileTriageTool, MediaMetadataTool, StringsTool
from orchestrion.tools.hostprofile import HostProfileTool
from orchestrion.tools.licences import LicenceAuditTool
from orchestrion.tools.logs import BruteForceTool, ErrorBurstTool, LogParseTool, TimelineTool
from orchestrion.tools.network import HttpChainTool, TLSOfferTool
from orchestrion.tools.osint import DnsRecordsTool, WebIntelTool
from orchestrion.tools.performance import TimedRequestsTool
from orchestrion.tools.portscan import PortCheckTool
from orchestrion.tools.readme import ReadmeCheckTool
from orchestrion.tools.secrets import SecretScanTool
from orchestrion.tools.testmap import TestMapTool
from orchestrion.tools.testplan import TestPlanTool
from orchestrion.tools.tls_audit import TLSAuditTool
from orchestrion.tools.untested import UntestedFunctionsTool
from orchestrion.tools.web_audit import HeadersAuditTool


def build_builtin_tools() -> dict[str, Tool]:
    """Return a fresh instance of every built-in tool, keyed by its `name`."""
    tools: list[Tool] = [
        PythonMetricsTool(),
        BanditTool(),
        SecretScanTool(),
        DataProfileTool(),
        LogParseTool(),
        BruteForceTool(),
        ErrorBurstTool(),
        TimelineTool(),
        TestMapTool(),
        UntestedFunctionsTool(),
        TestPlanTool(),
        DocstringCoverageTool(),
        ReadmeCheckTool(),
        ApiReferenceTool(),
        PortCheckTool(),
        TLSOfferTool(),
        HttpChainTool(),
        DnsRecordsTool(),
        WebIntelTool(),
        TimedRequestsTool(),
        HostProfileTool(),
        LicenceAuditTool(),
        ConfigSecretsTool(),
        AsvsWebCheckTool(),
        TLSAuditTool(),
        HeadersAuditTool(),
        ExposedFilesTool(),
        BannerAdvisoryTool(),
        FileTriageTool(),
        StringsTool(),
        ArchiveListingTool(),
        MediaMetadataTool(),
    ]
    return {tool.name: tool for tool in tools}
