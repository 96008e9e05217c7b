"""Agents are data (AgentSpec); one runner executes any of them."""
