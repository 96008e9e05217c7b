"""Benchmark W1: Orchestrion against the bare-httpx floor and LangGraph, in one run.

W1 is a task of three specialist agents in parallel, then a reporter: four LLM calls, answered by the
local OpenAI-compatible test server with zero latency, so what is measured is the framework. Every
contender runs in its own fresh process against the same server, one after the other:

1. floor: bench/w1_floor.py, the four HTTP calls with a bare httpx.AsyncClient;
2. orchestrion: bench/w1_orchestrion.py, a real Runtime persisting every step to SQLite (WAL);
3. langgraph: bench/peers/langgraph_w1.py in bench/.venv-peers, the same graph with no checkpointer.

Each does a warm-up, times tasks one at a time (concurrency 1: per-task wall time), then runs tasks
with 50 in flight (throughput). The table goes to stdout, the raw figures to
bench/results/w1-<date>.json. Traffic stays on 127.0.0.1.

Usage::

    bash bench/setup_peers.sh && .venv/bin/python bench/w1.py          # what `make bench` runs
    .venv/bin/python bench/w1.py --sequential 50 --concurrent 200      # a quicker run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from harness import add_plan_arguments, plan_from_arguments  # noqa: E402
from w1_spec import request_bodies  # noqa: E402

PEERS_PYTHON = BENCH / ".venv-peers" / "bin" / "python"
CONTENDER_TIMEOUT_SECONDS = 600
HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def contender_env() -> dict[str, str]:
    """The environment of every contender: nothing may leave the machine, nothing is traced."""
    env = dict(os.environ)
    env.update(
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        LANGSMITH_TRACING="false",
        LANGCHAIN_TRACING_V2="false",
        PYTHONUNBUFFERED="1",
    )
    return env


class VendorProcess:
    """`python -m orchestrion.testing.vendor_server` (or another command) on a free 127.0.0.1 port.

    Args:
        options: Extra command-line options of the vendor server (faults, seed...).
        command: The module or script to run instead of the vendor server (same options).
    """

    def __init__(self, options: list[str] | None = None, *, command: list[str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.base_url = f"{self.url}/v1"
        self._command = command or [sys.executable, "-m", "orchestrion.testing.vendor_server"]
        self._options = options or []
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> VendorProcess:
        self._process = subprocess.Popen(
            [*self._command, "--host", HOST, "--port", str(self.port), *self._options],
            env=contender_env(),
        )
        deadline = time.monotonic() + 30
        with httpx.Client(trust_env=False) as client:
            while True:
                if self._process.poll() is not None:
                    raise RuntimeError(f"the vendor server exited with {self._process.returncode}")
                try:
                    if client.get(f"{self.base_url}/models", timeout=1).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the vendor server did not answer /v1/models within 30 s")
                time.sleep(0.05)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server has used so far."""
        assert self._process is not None
        fields = Path(f"/proc/{self._process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __exit__(self, *exc: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


def run_contender(
    name: str, command: list[str], server: VendorProcess, plan_args: list[str]
) -> dict[str, Any]:
    """Run one contender process and return the JSON it prints (its stderr passes through)."""
    print(f"-- {name} ...", file=sys.stderr, flush=True)
    cpu_before = server.cpu_seconds()
    started = time.perf_counter()
    completed = subprocess.run(
        [*command, *plan_args],
        env=contender_env(),
        stdout=subprocess.PIPE,
        check=False,
        timeout=CONTENDER_TIMEOUT_SECONDS,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{name} exited with {completed.returncode}")
    lines = completed.stdout.decode().strip().splitlines()
    result: dict[str, Any] = json.loads(lines[-1])
    result["process_wall_s"] = round(time.perf_counter() - started, 1)
    result["server_cpu_s"] = round(server.cpu_seconds() - cpu_before, 2)
    print(
        f"   c1 p50 {result['c1']['p50_ms']} ms, c{result['cN']['concurrency']} "
        f"{result['cN']['tasks_per_s']} tasks/s ({result['process_wall_s']} s)",
        file=sys.stderr,
        flush=True,
    )
    return result


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    os_name = platform.platform()
    with_release = Path("/etc/os-release")
    if with_release.exists():
        for line in with_release.read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = f"{line.split('=', 1)[1].strip(chr(34))} (kernel {platform.release()})"
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "os": os_name,
        # Other work on the machine skews the figures; the 1-minute load average says how much.
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


def ratios(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Orchestrion over LangGraph and over the floor, per metric (>1 means Orchestrion is slower
    for wall time, faster for tasks/s)."""
    orc, lg, floor = results["orchestrion"], results["langgraph"], results["floor"]
    return {
        "c1_p50_vs_langgraph": round(orc["c1"]["p50_ms"] / lg["c1"]["p50_ms"], 2),
        "c1_p50_vs_floor": round(orc["c1"]["p50_ms"] / floor["c1"]["p50_ms"], 2),
        "c1_mean_vs_langgraph": round(orc["c1"]["mean_ms"] / lg["c1"]["mean_ms"], 2),
        "c1_mean_vs_floor": round(orc["c1"]["mean_ms"] / floor["c1"]["mean_ms"], 2),
        "cN_tasks_per_s_vs_langgraph": round(orc["cN"]["tasks_per_s"] / lg["cN"]["tasks_per_s"], 3),
        "cN_tasks_per_s_vs_floor": round(orc["cN"]["tasks_per_s"] / floor["cN"]["tasks_per_s"], 3),
    }


def table(results: dict[str, dict[str, Any]], ratio: dict[str, float]) -> str:
    """The W1 table in Markdown."""
    concurrency = results["orchestrion"]["cN"]["concurrency"]
    rows = [
        f"| Contender | c1 p50 (ms) | c1 p95 (ms) | c1 mean (ms) | c1 CPU/task (ms) "
        f"| c{concurrency} tasks/s | c{concurrency} p50 (ms) | peak RSS (MiB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    labels = {
        "floor": "floor (bare httpx)",
        "orchestrion": "Orchestrion (SQLite, every step persisted)",
        "langgraph": "LangGraph (no checkpointer)",
    }
    for name in ("floor", "orchestrion", "langgraph"):
        c1, cn = results[name]["c1"], results[name]["cN"]
        cells = [
            f"{c1['p50_ms']:.1f}",
            f"{c1['p95_ms']:.1f}",
            f"{c1['mean_ms']:.1f}",
            f"{c1['cpu_ms_per_task']:.1f}",
            f"{cn['tasks_per_s']:.1f}",
            f"{cn['p50_ms']:.0f}",
            f"{results[name]['peak_rss_mib']:.0f}",
        ]
        rows.append(f"| {labels[name]} | " + " | ".join(cells) + " |")
    rows += [
        "",
        f"| Ratio | per-task wall time, c1 p50 | per-task wall time, c1 mean | tasks/s at c{concurrency} |",
        "|---|---:|---:|---:|",
    ]
    for peer, label in (("langgraph", "LangGraph"), ("floor", "floor")):
        cells = [
            f"{ratio[f'c1_p50_vs_{peer}']:.2f}x",
            f"{ratio[f'c1_mean_vs_{peer}']:.2f}x",
            f"{ratio[f'cN_tasks_per_s_vs_{peer}']:.3f}x",
        ]
        rows.append(f"| Orchestrion / {label} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_plan_arguments(parser)
    parser.add_argument("--workers", type=int, default=50, help="Orchestrion's worker count")
    parser.add_argument("--results-dir", type=Path, default=BENCH / "results")
    args = parser.parse_args()
    plan = plan_from_arguments(args)
    if args.workers < plan.concurrency:
        parser.error("--workers must be at least --concurrency")
    if not PEERS_PYTHON.exists():
        parser.error(f"{PEERS_PYTHON} is missing; run `bash bench/setup_peers.sh` first")
    plan_args = [
        f"--warmup={plan.warmup}",
        f"--sequential={plan.sequential}",
        f"--concurrent={plan.concurrent}",
        f"--concurrency={plan.concurrency}",
        f"--concurrent-warmup={plan.concurrent_warmup}",
    ]
    started = datetime.now(UTC)
    host = machine()
    with tempfile.TemporaryDirectory(prefix="w1-") as scratch, VendorProcess() as server:
        bodies = Path(scratch) / "bodies.json"
        bodies.write_text(json.dumps(request_bodies()))
        common = ["--base-url", server.base_url, "--bodies", str(bodies)]
        results = {
            "floor": run_contender(
                "floor", [sys.executable, str(BENCH / "w1_floor.py"), *common], server, plan_args
            ),
            "orchestrion": run_contender(
                "orchestrion",
                [sys.executable, str(BENCH / "w1_orchestrion.py"), *common, f"--workers={args.workers}"],
                server,
                plan_args,
            ),
            "langgraph": run_contender(
                "langgraph",
                [str(PEERS_PYTHON), str(BENCH / "peers" / "langgraph_w1.py"), *common],
                server,
                plan_args,
            ),
        }
    ratio = ratios(results)
    report = {
        "workload": "W1",
        "started_at": started.isoformat(timespec="seconds"),
        "machine": host,
        "loadavg_1m_after": round(os.getloadavg()[0], 2),
        "server": "orchestrion.testing.vendor_server, separate process, latency 0",
        "results": results,
        "ratios": ratio,
    }
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"w1-{started.date().isoformat()}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(results, ratio))
    print(f"\nraw figures: {out.relative_to(BENCH.parent) if out.is_relative_to(BENCH.parent) else out}")


if __name__ == "__main__":
    main()
