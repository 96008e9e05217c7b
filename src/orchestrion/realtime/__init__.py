"""Live delivery to WebSocket clients: protocol, connections, streams and the hub (no web framework)."""
