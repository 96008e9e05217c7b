"""Container privileges in docker-compose files and Kubernetes manifests.

Compose services: ``privileged: true``, dangerous ``cap_add``, ``network_mode``/``pid``/``ipc: host``,
``user: root``, the Docker socket or ``/`` mounted, ``security_opt`` unconfined. Kubernetes workloads
(Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, and ``List`` items):
``hostNetwork``/``hostPID``/``hostIPC``, ``privileged``, ``allowPrivilegeEscalation``, dangerous
capabilities, ``runAsUser: 0``, container-runtime sockets or ``/`` as ``hostPath``, and containers that
nothing prevents from running as root (no ``runAsNonRoot: true`` and no non-zero ``runAsUser``,
the Pod Security Standards' "restricted" rule): low, since the image may still set a user.
"""

from __future__ import annotations

from collections.abc import Iterator

from orchestrion.domain.findings import Severity
from orchestrion.tools.config_checks import ConfigHit, Node, hit, truthy

_DANGEROUS_CAPABILITIES = frozenset(
    {"ALL", "SYS_ADMIN", "SYS_MODULE", "SYS_RAWIO", "SYS_PTRACE", "DAC_READ_SEARCH"}
)
_RUNTIME_SOCKETS = ("docker.sock", "containerd.sock", "crio.sock")
_POD_TEMPLATE_KINDS = frozenset(
    {"deployment", "statefulset", "daemonset", "replicaset", "job", "replicationcontroller"}
)
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


def check_documents(file: str, documents: list[Node]) -> Iterator[ConfigHit]:
    """Container rules for every compose file or Kubernetes object among `documents`."""
    for document in documents:
        if not isinstance(document.value, dict):
            continue
        services = document.value.get("services")
        if services is not None and isinstance(services.value, dict):
            for name, service in services.value.items():
                yield from _compose_service(file, name, service)
        yield from _kubernetes_object(file, document)


def _compose_service(file: str, name: str, service: Node) -> Iterator[ConfigHit]:
    if not isinstance(service.value, dict):
        return
    where = f"service {name}"
    privileged = _get(service, "privileged")
    if privileged is not None and truthy(_text(privileged)):
        yield hit("privileged_container", file, privileged.line, f"{where}: privileged: true")
    for capability in _items(_get(service, "cap_add")):
        if _capability(capability) in _DANGEROUS_CAPABILITIES:
            yield hit("privileged_container", file, capability.line, f"{where}: cap_add {_text(capability)}")
    for option in ("network_mode", "pid", "ipc"):
        node = _get(service, option)
        if node is not None and _text(node).lower() == "host":
            yield hit("host_namespace", file, node.line, f"{where}: {option}: host")
    user = _get(service, "user")
    if user is not None and _text(user).split(":", 1)[0].strip() in ("0", "root"):
        yield hit("runs_as_root", file, user.line, f"{where}: user: {_text(user)}")
    for volume in _items(_get(service, "volumes")):
        source_node = _get(volume, "source") if isinstance(volume.value, dict) else volume
        source = _text(source_node).split(":", 1)[0] if source_node is not None else ""
        yield from _host_mount(file, volume.line, where, source)
    for option_node in _items(_get(service, "security_opt")):
        option = _text(option_node).lower()
        if "unconfined" in option:
            yield hit(
                "privileged_container",
                file,
                option_node.line,
                f"{where}: security_opt {option}",
                severity=Severity.MEDIUM,
            )


def _kubernetes_object(file: str, document: Node) -> Iterator[ConfigHit]:
    kind_node = _get(document, "kind")
    if kind_node is None or _get(document, "apiVersion") is None:
        return
    kind = _text(kind_node).lower()
    if kind == "list":
        for item in _items(_get(document, "items")):
            yield from _kubernetes_object(file, item)
        return
    if kind == "pod":
        spec = _get(document, "spec")
    elif kind in _POD_TEMPLATE_KINDS:
        spec = _get(document, "spec", "template", "spec")
    elif kind == "cronjob":
        spec = _get(document, "spec", "jobTemplate", "spec", "template", "spec")
    else:
        return
    if spec is None:
        return
    name = _text(_get(document, "metadata", "name")) or "(unnamed)"
    yield from _pod_spec(file, f"{_text(kind_node)} {name}", spec)


def _pod_spec(file: str, where: str, spec: Node) -> Iterator[ConfigHit]:
    for option in ("hostNetwork", "hostPID", "hostIPC"):
        node = _get(spec, option)
        if node is not None and truthy(_text(node)):
            yield hit("host_namespace", file, node.line, f"{where}: {option}: true")
    pod_user = _get(spec, "securityContext", "runAsUser")
    pod_non_root = _get(spec, "securityContext", "runAsNonRoot")
    if pod_user is not None and _text(pod_user) == "0":
        yield hit("runs_as_root", file, pod_user.line, f"{where}: pod securityContext runAsUser: 0")
    for volume in _items(_get(spec, "volumes")):
        path = _get(volume, "hostPath", "path")
        if path is not None:
            yield from _host_mount(file, path.line, where, _text(path))
    for list_name in _CONTAINER_LISTS:
        for container in _items(_get(spec, list_name)):
            yield from _container(file, where, container, pod_user=pod_user, pod_non_root=pod_non_root)


def _container(
    file: str, where: str, container: Node, *, pod_user: Node | None, pod_non_root: Node | None
) -> Iterator[ConfigHit]:
    label = f"{where} container {_text(_get(container, 'name')) or '(unnamed)'}"
    context = _get(container, "securityContext")
    privileged = _get(context, "privileged")
    if privileged is not None and truthy(_text(privileged)):
        yield hit("privileged_container", file, privileged.line, f"{label}: privileged: true")
    escalation = _get(context, "allowPrivilegeEscalation")
    if escalation is not None and truthy(_text(escalation)):
        yield hit("privilege_escalation", file, escalation.line, f"{label}: allowPrivilegeEscalation: true")
    for capability in _items(_get(context, "capabilities", "add")):
        if _capability(capability) in _DANGEROUS_CAPABILITIES:
            yield hit(
                "privileged_container", file, capability.line, f"{label}: adds capability {_text(capability)}"
            )
    user = _get(context, "runAsUser") or pod_user
    non_root = _get(context, "runAsNonRoot") or pod_non_root
    if user is not None and _text(user) == "0":
        if _get(context, "runAsUser") is not None:
            yield hit("runs_as_root", file, user.line, f"{label}: runAsUser: 0")
        return
    if user is None and (non_root is None or not truthy(_text(non_root))):
        yield hit(
            "runs_as_root",
            file,
            container.line,
            f"{label}: nothing prevents running as root (no runAsNonRoot: true, no non-zero runAsUser)",
            severity=Severity.LOW,
        )


def _host_mount(file: str, line: int, where: str, source: str) -> Iterator[ConfigHit]:
    cleaned = source.strip().rstrip("/") or ("/" if source.strip().startswith("/") else "")
    if cleaned.endswith(_RUNTIME_SOCKETS):
        yield hit(
            "privileged_container", file, line, f"{where}: mounts the container runtime socket {cleaned}"
        )
    elif cleaned == "/":
        yield hit("privileged_container", file, line, f"{where}: mounts the host's root filesystem")


def _get(node: Node | None, *keys: str) -> Node | None:
    for key in keys:
        if node is None or not isinstance(node.value, dict):
            return None
        node = node.value.get(key)
    return node


def _items(node: Node | None) -> list[Node]:
    return node.value if node is not None and isinstance(node.value, list) else []


def _text(node: Node | None) -> str:
    return node.value.strip() if node is not None and isinstance(node.value, str) else ""


def _capability(node: Node) -> str:
    return _text(node).upper().removeprefix("CAP_")
