"""LLM providers behind one ABC, and the router agents call by route name."""
