"""The `orchestrion` command."""
