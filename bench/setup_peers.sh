#!/usr/bin/env bash
# Create bench/.venv-peers: a separate environment for the peer frameworks the benchmarks compare
# against (LangGraph for W1, LiteLLM's Router for the provider-router benchmarks), so that their
# dependencies never mix with Orchestrion's. Idempotent: when the environment already imports
# everything, it does nothing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-peers"
python="${PYTHON:-python3}"
packages=(langgraph litellm httpx)
# Importing litellm must not fetch its model price map from GitHub: the benchmarks stay on 127.0.0.1.
export LITELLM_LOCAL_MODEL_COST_MAP=True
versions='from importlib.metadata import version; print(*(f"{p} {version(p)}" for p in ("langgraph", "litellm", "httpx")), sep=", ")'

if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c "import langgraph.graph, litellm, httpx" 2>/dev/null; then
    echo "bench/.venv-peers is ready ($("$venv/bin/python" -c "$versions"))"
    exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${packages[@]}"
echo "bench/.venv-peers: $("$venv/bin/python" -c "$versions")"
