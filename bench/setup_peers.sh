#!/usr/bin/env bash
# Create bench/.venv-peers: a separate environment for the peer frameworks the benchmarks compare
# against (LangGraph), so that their dependencies never mix with Orchestrion's. Idempotent: when the
# environment already imports everything, it does nothing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-peers"
python="${PYTHON:-python3}"
packages=(langgraph httpx)

if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c "import langgraph.graph, httpx" 2>/dev/null; then
    echo "bench/.venv-peers is ready ($("$venv/bin/python" -c 'from importlib.metadata import version; print("langgraph", version("langgraph"), "httpx", version("httpx"))'))"
    exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${packages[@]}"
"$venv/bin/python" -c 'from importlib.metadata import version; print("bench/.venv-peers: langgraph", version("langgraph"), "httpx", version("httpx"))'
