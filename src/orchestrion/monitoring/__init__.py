"""Metrics, system sampling and alerts, used by every layer through a small interface."""
