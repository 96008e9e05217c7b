"""`python -m orchestrion` runs the CLI."""

from __future__ import annotations

from orchestrion.cli.main import main

main()
