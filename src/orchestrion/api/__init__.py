"""The HTTP edge: FastAPI app factory, routes, SSE."""
