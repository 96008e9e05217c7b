"""Python SDK for the Orchestrion API (sync and async)."""

from __future__ import annotations

from orchestrion.client.http import AsyncOrchestrionClient, OrchestrionAPIError, OrchestrionClient

__all__ = ["AsyncOrchestrionClient", "OrchestrionAPIError", "OrchestrionClient"]
