"""WebSocket fan-out benchmark: many real clients following tasks while events are published.

    .venv/bin/python bench/ws.py                       # both phases, the BENCHMARKS.md figures
    .venv/bin/python bench/ws.py --phase follow --clients 200 --seconds 10   # a quick look

Three kinds of processes, all on 127.0.0.1: the server (`bench/ws_server.py`: what `orchestrion
serve` runs, plus two admin-only bench routes), client processes (`bench/ws_clients.py`, uvloop and
the `websockets` library) and this one, which coordinates them and samples the server's RSS and CPU
with psutil.

Phase "follow": `--clients` connections, spread over `--client-procs` processes, each follow one of
`--tasks` tasks (`task:{id}` from seq 0); once all are subscribed, the server appends `--rate` events
per second for `--seconds` seconds, round robin over the tasks, each in its own transaction. Every
client checks its seqs for gaps and duplicates; publish-to-receive latency is the client's clock at
receipt minus the `ts` the server wrote into the event before submitting its transaction (same host,
same clock), so it includes the SQLite commit, the bus, the fan-out, the send queue, the socket and
the client's JSON parse.

Phase "idle": a fresh server; `--idle` connections spread over `--idle-procs` processes, each
authenticated and subscribed to a task channel, then held for `--hold` seconds (answering pings).
Memory per connection is the server's RSS growth divided by the connections.

Results go to stdout and `bench/results/ws-<date>.json`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import platform
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ws_clients import run_followers, run_idle, summarise  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`bench/ws_server.py` in its own process, on a fresh SQLite file."""

    def __init__(self, *, ping_interval: float) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="orchestrion-wsbench-"))
        self.port = free_port()
        self.key = "orc_bench_" + secrets.token_urlsafe(24)
        env = dict(
            os.environ,
            ORCHESTRION_HOME=str(self.home),
            ORCHESTRION_PORT=str(self.port),
            ORCHESTRION_ADMIN_API_KEY=self.key,
            ORCHESTRION_LLM="none",
            ORCHESTRION_LOG_LEVEL="WARNING",
            ORCHESTRION_WS_PING_INTERVAL_SECONDS=str(ping_interval),
        )
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "ws_server.py")], env=env, cwd=str(self.home), stderr=subprocess.PIPE
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {self.process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            time.sleep(0.2)
        self.ps = psutil.Process(self.process.pid)

    def post(self, path: str, **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.key}"}
        response = httpx.post(f"{self.url}{path}", params=params, headers=headers, timeout=600)
        response.raise_for_status()
        return response.json()

    def metrics(self) -> dict[str, float]:
        headers = {"Authorization": f"Bearer {self.key}"}
        text = httpx.get(f"{self.url}/metrics", headers=headers, timeout=30).text
        values = {}
        for line in text.splitlines():
            if line.startswith("orchestrion_ws_") and "_created" not in line:
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    def rss(self) -> int:
        return int(self.ps.memory_info().rss)

    def cpu(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.home, ignore_errors=True)


class Sampler:
    """The server's RSS and CPU share, once a second, in a thread."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.rss: list[int] = []
        self.cpu_percent: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self.server.ps.cpu_percent(None)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.rss.append(self.server.rss())
            self.cpu_percent.append(self.server.ps.cpu_percent(None))


def start_clients(target: Any, shares: list[tuple[Any, ...]]) -> list[tuple[Any, Any]]:
    context = multiprocessing.get_context("spawn")
    started = []
    for share in shares:
        parent, child = context.Pipe()
        process = context.Process(target=target, args=(*share, child), daemon=True)
        process.start()
        started.append((process, parent))
    return started


def wait_ready(clients: list[tuple[Any, Any]], timeout: float = 300) -> int:
    ready = 0
    deadline = time.monotonic() + timeout
    for process, pipe in clients:
        if not pipe.poll(max(1.0, deadline - time.monotonic())):
            raise RuntimeError(f"client process {process.pid} not ready")
        ready += int(pipe.recv()["ready"])
    return ready


def follow_phase(args: argparse.Namespace) -> dict[str, Any]:
    server = Server(ping_interval=20.0)
    try:
        tasks: list[str] = server.post("/bench/tasks", count=args.tasks)["tasks"]
        assignment = [tasks[i % len(tasks)] for i in range(args.clients)]
        shares = [
            (server.ws_url, server.key, args.compression, assignment[i :: args.client_procs])
            for i in range(args.client_procs)
        ]
        rss_before = server.rss()
        connect_started = time.monotonic()
        clients = start_clients(run_followers, shares)
        ready = wait_ready(clients)
        connect_seconds = time.monotonic() - connect_started
        rss_connected = server.rss()
        print(f"follow: {ready} clients subscribed in {connect_seconds:.1f}s", file=sys.stderr)
        client_ps = [psutil.Process(p.pid) for p, _ in clients]
        client_cpu0 = sum(p.cpu_times().user + p.cpu_times().system for p in client_ps)
        cpu0 = server.cpu()
        with Sampler(server) as sampler:
            published = server.post("/bench/publish", rate=args.rate, seconds=args.seconds)
        server_cpu = server.cpu() - cpu0
        client_cpu = sum(p.cpu_times().user + p.cpu_times().system for p in client_ps) - client_cpu0
        for _, pipe in clients:
            pipe.send(published["last_seq"])
        reports = [pipe.recv() for _, pipe in clients]
        for process, _ in clients:
            process.join(60)
        metrics = server.metrics()
    finally:
        server.stop()
    latencies = [x for r in reports for x in r["latencies"]]
    elapsed = published["elapsed_seconds"]
    return {
        "clients": ready,
        "client_processes": args.client_procs,
        "client_compression": args.compression,
        "tasks": args.tasks,
        "followers_per_task": args.clients / args.tasks,
        "rate": args.rate,
        "seconds": args.seconds,
        "connect_seconds": round(connect_seconds, 1),
        "publisher": {k: v for k, v in published.items() if k != "last_seq"},
        "deliveries_expected": sum(r["expected"] for r in reports),
        "deliveries_received": sum(r["received"] for r in reports),
        "lost": sum(r["lost"] for r in reports),
        "gaps": sum(r["gaps"] for r in reports),
        "duplicates": sum(r["duplicates"] for r in reports),
        "closed_early": [c for r in reports for c in r["closed_early"]],
        "latency": summarise(latencies),
        "server": {
            "rss_before_clients_mib": round(rss_before / 2**20, 1),
            "rss_connected_mib": round(rss_connected / 2**20, 1),
            "rss_peak_mib": round(max(sampler.rss, default=0) / 2**20, 1),
            "cpu_seconds": round(server_cpu, 2),
            "cpu_percent_of_one_core": round(100 * server_cpu / elapsed, 1),
            "cpu_percent_samples_max": max(sampler.cpu_percent, default=0.0),
        },
        "clients_cpu_percent_of_one_core": round(100 * client_cpu / elapsed, 1),
        "metrics": metrics,
    }


def idle_phase(args: argparse.Namespace) -> dict[str, Any]:
    server = Server(ping_interval=20.0)
    try:
        tasks: list[str] = server.post("/bench/tasks", count=args.tasks)["tasks"]
        # One connection first: the hub starts with it, so its one-off cost is not per connection.
        warm = start_clients(
            run_idle, [(server.ws_url, server.key, args.compression, 1, [f"task:{tasks[0]}"])]
        )
        wait_ready(warm)
        time.sleep(2)
        rss_before = server.rss()
        channels = [f"task:{t}" for t in tasks]
        per_proc = [
            args.idle // args.idle_procs + (1 if i < args.idle % args.idle_procs else 0)
            for i in range(args.idle_procs)
        ]
        started = time.monotonic()
        clients = start_clients(
            run_idle, [(server.ws_url, server.key, args.compression, n, channels) for n in per_proc]
        )
        ready = wait_ready(clients)
        connect_seconds = time.monotonic() - started
        time.sleep(2)
        rss_connected = server.rss()
        cpu0 = server.cpu()
        with Sampler(server) as sampler:
            time.sleep(args.hold)
        hold_cpu = server.cpu() - cpu0
        rss_held = server.rss()
        for _, pipe in [*clients, *warm]:
            pipe.send("done")
        reports = [pipe.recv() for _, pipe in clients]
        for process, _ in [*clients, *warm]:
            process.join(60)
        metrics = server.metrics()
    finally:
        server.stop()
    return {
        "connections": ready,
        "client_processes": args.idle_procs,
        "client_compression": args.compression,
        "connect_seconds": round(connect_seconds, 1),
        "hold_seconds": args.hold,
        "still_open_after_hold": sum(r["open"] for r in reports),
        "closed_early": [c for r in reports for c in r["closed_early"]],
        "server": {
            "rss_before_mib": round(rss_before / 2**20, 1),
            "rss_connected_mib": round(rss_connected / 2**20, 1),
            "rss_after_hold_mib": round(rss_held / 2**20, 1),
            "rss_peak_mib": round(max(sampler.rss, default=0) / 2**20, 1),
            "kib_per_connection": round((rss_held - rss_before) / ready / 1024, 1),
            "cpu_percent_of_one_core_idle": round(100 * hold_cpu / args.hold, 1),
        },
        "metrics": metrics,
    }


def machine() -> dict[str, Any]:
    cpu_model = ""
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    import uvicorn
    import websockets

    return {
        "nproc": os.cpu_count(),
        "cpu": cpu_model,
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "uvicorn": uvicorn.__version__,
        "websockets": websockets.__version__,
        "load_average_at_start": os.getloadavg(),
        "fd_limit": resource.getrlimit(resource.RLIMIT_NOFILE),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--phase", choices=["all", "follow", "idle"], default="all")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--client-procs", type=int, default=4)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--idle", type=int, default=5000)
    parser.add_argument("--idle-procs", type=int, default=5)
    parser.add_argument("--hold", type=float, default=30.0)
    parser.add_argument("--label", default="", help="A name for this run in the results file.")
    parser.add_argument(
        "--no-compression",
        dest="compression",
        action="store_false",
        help="Clients do not offer permessage-deflate (they do by default, as browsers do).",
    )
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    run: dict[str, Any] = {
        "started_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "label": args.label,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
    }
    if args.phase in ("all", "follow"):
        run["follow"] = follow_phase(args)
        print(json.dumps(run["follow"], indent=2))
    if args.phase in ("all", "idle"):
        run["idle"] = idle_phase(args)
        print(json.dumps(run["idle"], indent=2))
    results = HERE / "results" / f"ws-{datetime.datetime.now(datetime.UTC).date().isoformat()}.json"
    runs = json.loads(results.read_text()) if results.exists() else []
    runs.append(run)
    results.write_text(json.dumps(runs, indent=2) + "\n")
    print(f"recorded in {results.relative_to(HERE.parent)}", file=sys.stderr)


if __name__ == "__main__":
    main()
