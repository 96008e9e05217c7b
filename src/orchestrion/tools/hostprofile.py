"""`host_profile`: a psutil snapshot of the machine Orchestrion runs on, with pressure findings.

It profiles THIS host only: with no target, or when the target resolves (through the target policy,
which refuses loopback unless the operator allowlisted it) to loopback or to an address of one of this
host's interfaces. Any other target is refused: psutil cannot see another machine.

What it reads: CPU use over a short sample, load averages, memory and swap, usage of every mounted
disk, the top processes by CPU and by resident memory (pid and name only: command lines can carry
secrets) and the TCP ports this host listens on.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any, ClassVar

import psutil
from pydantic import Field

from orchestrion.domain.findings import Severity
from orchestrion.exceptions import ToolError
from orchestrion.tools.base import Observation, ProposedFinding, Tool, ToolArgs, ToolContext, ToolOutput
from orchestrion.tools.nettarget import expect_args, require_target

__all__ = ["DiskUsage", "HostProfileArgs", "HostProfileTool", "HostSnapshot", "ProcessUsage", "assess_host"]

_GIB = 1024**3
_MAX_DISKS = 20
_MAX_LISTENING = 100
_DISK_FULL_PERCENT = 98.0
# Read-only images and kernel file systems are always "full" and say nothing about pressure.
_IGNORED_FSTYPES = frozenset({"squashfs", "iso9660", "tmpfs", "devtmpfs"})


class HostProfileArgs(ToolArgs):
    """Arguments of `HostProfileTool`."""

    sample_seconds: float = Field(default=0.5, ge=0.1, le=5.0, description="CPU sampling interval.")
    top: int = Field(default=5, ge=1, le=20, description="Processes listed by CPU and by memory.")
    memory_percent: float = Field(default=90.0, ge=1.0, le=100.0, description="Memory use that is pressure.")
    swap_percent: float = Field(default=80.0, ge=1.0, le=100.0, description="Swap use that is pressure.")
    disk_percent: float = Field(default=90.0, ge=1.0, le=100.0, description="Disk use that is pressure.")
    load_per_cpu: float = Field(
        default=2.0, ge=0.1, le=100.0, description="5-minute load average per CPU that is overload."
    )


@dataclass(frozen=True, kw_only=True)
class DiskUsage:
    """Usage of one mounted file system."""

    mountpoint: str
    fstype: str
    total: int
    used: int
    free: int
    percent: float


@dataclass(frozen=True, kw_only=True)
class ProcessUsage:
    """One process's CPU (percent of one core, over the sample) and resident memory."""

    pid: int
    name: str
    cpu_percent: float
    rss: int


@dataclass(frozen=True, kw_only=True)
class HostSnapshot:
    """What psutil showed at one moment."""

    hostname: str
    cpu_count: int | None
    cpu_percent: float
    sample_seconds: float
    load: tuple[float, float, float] | None
    memory_total: int
    memory_available: int
    memory_percent: float
    swap_total: int
    swap_used: int
    swap_percent: float
    disks: tuple[DiskUsage, ...]
    top_cpu: tuple[ProcessUsage, ...]
    top_rss: tuple[ProcessUsage, ...]
    listening: tuple[dict[str, Any], ...]
    listening_error: str | None = None


class HostProfileTool(Tool):
    """CPU, load, memory, swap, disks, top processes and listening ports of this host."""

    name: ClassVar[str] = "host_profile"
    description: ClassVar[str] = (
        "Snapshot the machine Orchestrion runs on (no target, or a target resolving to this host: "
        "loopback or one of its addresses, allowlisted by the operator): CPU %, load averages, memory, "
        "swap, disk usage of every mount, top processes by CPU and memory, TCP listening ports. Flags "
        "memory, swap, disk and load pressure above the given thresholds."
    )
    args_model: ClassVar[type[ToolArgs]] = HostProfileArgs

    async def execute(self, args: ToolArgs, ctx: ToolContext) -> ToolOutput:
        """Profile this host."""
        options = expect_args(args, HostProfileArgs, self.name)
        if ctx.target is not None and ctx.target.strip():
            await self._require_this_host(ctx)
        snapshot = await asyncio.to_thread(
            take_snapshot, sample_seconds=options.sample_seconds, top=options.top
        )
        return assess_host(snapshot, options)

    async def _require_this_host(self, ctx: ToolContext) -> None:
        policy, target = require_target(ctx, self.name)
        addresses = await policy.resolve(target.host, target.effective_port)
        local = await asyncio.to_thread(local_addresses)
        foreign = [a.compressed for a in addresses if not a.is_loopback and a.compressed not in local]
        if foreign:
            raise ToolError(
                f"{self.name} profiles only the machine Orchestrion runs on; {target.host} resolves to "
                f"{', '.join(foreign)}, which is not one of its addresses",
                tool=self.name,
            )


def local_addresses() -> frozenset[str]:
    """The IP addresses of this host's interfaces (blocking)."""
    found: set[str] = set()
    for entries in psutil.net_if_addrs().values():
        for entry in entries:
            if entry.family in (socket.AF_INET, socket.AF_INET6):
                try:
                    found.add(ipaddress.ip_address(str(entry.address).split("%")[0]).compressed)
                except ValueError:
                    continue
    return frozenset(found)


def take_snapshot(*, sample_seconds: float, top: int) -> HostSnapshot:
    """Read the host's state with psutil (blocking: sleeps `sample_seconds` to measure CPU)."""
    processes = list(psutil.process_iter(["pid", "name"]))
    for process in processes:
        try:
            process.cpu_percent(None)  # the first call only starts the measurement
        except psutil.Error:
            continue
    cpu_percent = float(psutil.cpu_percent(interval=sample_seconds))
    usage: list[ProcessUsage] = []
    for process in processes:
        try:
            usage.append(
                ProcessUsage(
                    pid=int(process.pid),
                    name=str(process.info.get("name") or "?"),
                    cpu_percent=float(process.cpu_percent(None)),
                    rss=int(process.memory_info().rss),
                )
            )
        except psutil.Error:
            continue
    memory = psutil.virtual_memory()
    swap = psutil.swap_memory()
    listening, listening_error = _listening()
    load: tuple[float, float, float] | None = None
    try:
        one, five, fifteen = psutil.getloadavg()
        load = (float(one), float(five), float(fifteen))
    except (AttributeError, OSError):
        load = None
    return HostSnapshot(
        hostname=socket.gethostname(),
        cpu_count=psutil.cpu_count(),
        cpu_percent=cpu_percent,
        sample_seconds=sample_seconds,
        load=load,
        memory_total=int(memory.total),
        memory_available=int(memory.available),
        memory_percent=float(memory.percent),
        swap_total=int(swap.total),
        swap_used=int(swap.used),
        swap_percent=float(swap.percent),
        disks=_disks(),
        top_cpu=tuple(sorted(usage, key=lambda p: p.cpu_percent, reverse=True)[:top]),
        top_rss=tuple(sorted(usage, key=lambda p: p.rss, reverse=True)[:top]),
        listening=listening,
        listening_error=listening_error,
    )


def _disks() -> tuple[DiskUsage, ...]:
    disks: list[DiskUsage] = []
    seen: set[str] = set()
    for partition in psutil.disk_partitions(all=False):
        if partition.fstype in _IGNORED_FSTYPES or partition.device in seen:
            continue
        try:
            usage = psutil.disk_usage(partition.mountpoint)
        except OSError:
            continue
        seen.add(partition.device)
        disks.append(
            DiskUsage(
                mountpoint=str(partition.mountpoint),
                fstype=str(partition.fstype),
                total=int(usage.total),
                used=int(usage.used),
                free=int(usage.free),
                percent=float(usage.percent),
            )
        )
    if not disks:
        # Containers sometimes list no partition; the root file system is still worth a look.
        usage = psutil.disk_usage("/")
        disks.append(
            DiskUsage(
                mountpoint="/",
                fstype="?",
                total=int(usage.total),
                used=int(usage.used),
                free=int(usage.free),
                percent=float(usage.percent),
            )
        )
    return tuple(disks[:_MAX_DISKS])


def _listening() -> tuple[tuple[dict[str, Any], ...], str | None]:
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError) as exc:
        return (), f"listening sockets not readable: {exc}"
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for connection in connections:
        if connection.status != psutil.CONN_LISTEN or not connection.laddr:
            continue
        key = (str(connection.laddr.ip), int(connection.laddr.port))
        if key in found:
            continue
        name: str | None = None
        if connection.pid:
            try:
                name = str(psutil.Process(connection.pid).name())
            except psutil.Error:
                name = None
        found[key] = {"address": key[0], "port": key[1], "pid": connection.pid, "process": name}
    ordered = sorted(found.values(), key=lambda entry: (entry["port"], entry["address"]))
    return tuple(ordered[:_MAX_LISTENING]), None


def assess_host(snapshot: HostSnapshot, options: HostProfileArgs) -> ToolOutput:
    """Observations of a snapshot and findings for pressure above the thresholds (pure)."""
    observations: list[Observation] = []
    findings: list[ProposedFinding] = []
    where = snapshot.hostname
    load_text = "/".join(f"{x:.2f}" for x in snapshot.load) if snapshot.load else "not available"
    observations.append(
        Observation(
            summary=(
                f"{where}: CPU {snapshot.cpu_percent:.1f}% over {snapshot.sample_seconds:g}s on "
                f"{snapshot.cpu_count or '?'} CPUs; load average (1/5/15 min) {load_text}"
            ),
            data={
                "cpu_percent": snapshot.cpu_percent,
                "cpu_count": snapshot.cpu_count,
                "load": snapshot.load,
            },
            location=where,
        )
    )
    if snapshot.load and snapshot.cpu_count:
        per_cpu = snapshot.load[1] / snapshot.cpu_count
        if per_cpu >= options.load_per_cpu:
            findings.append(
                _pressure("CPU overloaded", Severity.LOW, f"5-minute load per CPU is {per_cpu:.2f}", 0, where)
            )
    observations.append(
        Observation(
            summary=(
                f"{where}: memory {snapshot.memory_percent:.1f}% used "
                f"({_gib(snapshot.memory_available)} available of {_gib(snapshot.memory_total)}); swap "
                f"{snapshot.swap_percent:.1f}% used "
                f"({_gib(snapshot.swap_used)} of {_gib(snapshot.swap_total)})"
            ),
            data={
                "memory_total": snapshot.memory_total,
                "memory_available": snapshot.memory_available,
                "memory_percent": snapshot.memory_percent,
                "swap_total": snapshot.swap_total,
                "swap_used": snapshot.swap_used,
                "swap_percent": snapshot.swap_percent,
            },
            location=where,
        )
    )
    if snapshot.memory_percent >= options.memory_percent:
        detail = f"memory is {snapshot.memory_percent:.1f}% used (threshold {options.memory_percent:g}%)"
        findings.append(_pressure("Memory pressure", Severity.MEDIUM, detail, 1, where))
    if snapshot.swap_total and snapshot.swap_percent >= options.swap_percent:
        detail = f"swap is {snapshot.swap_percent:.1f}% used (threshold {options.swap_percent:g}%)"
        findings.append(_pressure("Heavy swap use", Severity.LOW, detail, 1, where))
    for disk in snapshot.disks:
        observations.append(
            Observation(
                summary=(
                    f"{where}: disk {disk.mountpoint} ({disk.fstype}) {disk.percent:.1f}% used, "
                    f"{_gib(disk.free)} free of {_gib(disk.total)}"
                ),
                data=vars(disk),
                location=f"{where}:{disk.mountpoint}",
            )
        )
        if disk.percent >= options.disk_percent:
            severity = Severity.HIGH if disk.percent >= _DISK_FULL_PERCENT else Severity.MEDIUM
            detail = f"{disk.mountpoint} is {disk.percent:.1f}% full (threshold {options.disk_percent:g}%)"
            findings.append(
                _pressure(
                    f"Disk {disk.mountpoint} nearly full", severity, detail, len(observations) - 1, where
                )
            )
    for label, processes in (("CPU", snapshot.top_cpu), ("memory", snapshot.top_rss)):
        shown = ", ".join(f"{p.name} ({p.pid}) {p.cpu_percent:.0f}% CPU {_mib(p.rss)}" for p in processes)
        observations.append(
            Observation(
                summary=f"{where}: top processes by {label}: {shown or 'none readable'}",
                data={"by": label, "processes": [vars(p) for p in processes]},
                location=where,
            )
        )
    ports = ", ".join(f"{e['address']}:{e['port']} ({e['process'] or '?'})" for e in snapshot.listening)
    observations.append(
        Observation(
            summary=f"{where}: {len(snapshot.listening)} TCP listening sockets: "
            + (ports or snapshot.listening_error or "none"),
            data={"listening": list(snapshot.listening), "error": snapshot.listening_error},
            location=where,
        )
    )
    data = {
        "hostname": where,
        "cpu_percent": snapshot.cpu_percent,
        "load": snapshot.load,
        "memory_percent": snapshot.memory_percent,
        "swap_percent": snapshot.swap_percent,
        "disks": {d.mountpoint: d.percent for d in snapshot.disks},
        "listening_ports": sorted({e["port"] for e in snapshot.listening}),
    }
    return ToolOutput(observations=tuple(observations), findings=tuple(findings), data=data)


def _pressure(title: str, severity: Severity, detail: str, index: int, where: str) -> ProposedFinding:
    return ProposedFinding(
        title=f"{title} on {where}",
        severity=severity,
        description=f"At the time of the snapshot, {detail}.",
        recommendation=(
            "Find what consumes it (the top processes listed), free or add capacity, and alert on this "
            "metric before it runs out."
        ),
        observation_indexes=(index,),
    )


def _gib(value: int) -> str:
    return f"{value / _GIB:.1f} GiB"


def _mib(value: int) -> str:
    return f"{value / 1024**2:.0f} MiB"
