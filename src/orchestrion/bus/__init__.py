"""Event fan-out: local (in-process) now, Redis later, behind one ABC."""
