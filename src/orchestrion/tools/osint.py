"""Tools of the ``osint_specialist`` agent: what a domain and its web site reveal to anyone who asks.

- `DnsRecordsTool` (``dns_records``, in `dns_records`): public DNS records, with SPF, DMARC, CAA and
  MX checks. Queries go to the policy's resolver, never to the target.
- `WebIntelTool` (``web_intel``, in `web_intel`): page metadata, links, published e-mail addresses,
  technology hints, robots.txt, the sitemap and security.txt, fetched through the target policy.

Both are passive: they read what the domain publishes, and neither needs active scanning permission.
"""

from __future__ import annotations

from orchestrion.tools.dns_records import DnsRecordsTool
from orchestrion.tools.web_intel import WebIntelArgs, WebIntelTool

__all__ = ["DnsRecordsTool", "WebIntelArgs", "WebIntelTool"]
