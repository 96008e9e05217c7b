"""Orchestrion: a self-hosted multi-agent task server."""

from __future__ import annotations

__version__ = "0.1.0"
