"""Tools: real side effects behind a typed, policy-guarded interface."""
