"""The composition root: builds every component from Settings. Nothing else constructs them."""

from __future__ import annotations

import logging
import os
import random
import socket
import uuid
from collections.abc import Mapping, Sequence

from orchestrion.agents.builtin import BUILTIN_AGENTS, BUILTIN_TASK_TYPES
from orchestrion.agents.loader import LoadedSpecs, load_agent_dir, load_entry_points, register_specs
from orchestrion.agents.recall import RECALL_AGENTS, RECALL_TASK_TYPES
from orchestrion.agents.registry import AgentRegistry
from orchestrion.agents.runner import AgentRunner
from orchestrion.bus.local import LocalEventBus
from orchestrion.engines.assembly import build_engine_rules, build_engines, build_memory
from orchestrion.engines.coordinator import Coordinator
from orchestrion.engines.planner import PlanLimits
from orchestrion.engines.recall import MemoryService
from orchestrion.engines.status import EngineStatusTracker, NoticeRelay
from orchestrion.engines.team import TeamEngine
from orchestrion.exceptions import UnknownChoiceError
from orchestrion.intelligence.agent_metrics import AgentMonitor
from orchestrion.intelligence.service import Intelligence
from orchestrion.monitoring.alert_rules import load_alert_rules
from orchestrion.monitoring.alerts import AlertManager
from orchestrion.monitoring.metrics import Metrics
from orchestrion.monitoring.sampler import SystemSample, SystemSampler
from orchestrion.monitoring.webhook import AlertWebhook, check_webhook_url
from orchestrion.providers.accounting import CallLedger
from orchestrion.providers.base import Provider
from orchestrion.providers.breaker import CircuitState
from orchestrion.providers.config import load_providers_config
from orchestrion.providers.deployment import Deployment, build_deployment
from orchestrion.providers.factory import build_adapters
from orchestrion.providers.router import ProviderRouter
from orchestrion.queue.local import LocalJobQueue
from orchestrion.realtime.hub import WebSocketHub
from orchestrion.realtime.metrics import WsMetrics
from orchestrion.security import ROLES, key_from_secret, load_or_create_secret, new_api_key
from orchestrion.settings import Settings
from orchestrion.store import users as user_store
from orchestrion.store.database import Database, WriteTx
from orchestrion.tools.base import Tool
from orchestrion.tools.mcp import McpServerPool, load_mcp_config
from orchestrion.tools.memory import MemorySearchTool
from orchestrion.tools.policy import WorkspacePolicy
from orchestrion.tools.registry import build_builtin_tools
from orchestrion.tools.targets import TargetPolicy

logger = logging.getLogger(__name__)


def build_routes(settings: Settings, *, ledger: CallLedger, metrics: Metrics) -> dict[str, list[Deployment]]:
    """The configured LLM routes, each deployment built once and wrapped in its policy chain.

    Raises:
        ConfigurationError: On any invalid entry (the message names it and the valid choices).
    """
    config = load_providers_config(settings)
    adapters = build_adapters(config, settings=settings)
    deployments: dict[str, Deployment] = {}
    for name, adapter in adapters.items():
        options = config.deployments[name]
        price = config.prices.price_for_deployment(options)
        if price is None:
            logger.warning(
                "no price known for %s (%s:%s): its cost is accounted as 0 and only token budgets bind "
                "it; set `price:` in the routes file",
                name,
                options.provider,
                options.model,
            )
        deployments[name] = build_deployment(adapter, options, price=price, ledger=ledger, metrics=metrics)
    if config.routes:
        logger.info("LLM routes from %s: %s", config.source, {r: list(c) for r, c in config.routes.items()})
    return {route: [deployments[name] for name in chain] for route, chain in config.routes.items()}


def build_monitoring(
    settings: Settings,
    *,
    db: Database,
    bus: LocalEventBus,
    metrics: Metrics,
    queue: LocalJobQueue,
    router: ProviderRouter | None,
    agent_monitor: AgentMonitor,
) -> tuple[SystemSampler, AlertManager]:
    """The system sampler, and the alert manager that evaluates its rules after every sample.

    Raises:
        ConfigurationError: On a bad alert rules file, a rule naming a metric the registry does not
            have, or a webhook URL that is not http(s).
    """
    rules, source = load_alert_rules(settings.alert_rules_file)
    sampler = SystemSampler(
        db=db,
        bus=bus,
        registry=metrics.registry,
        disk_path=settings.home,
        interval=settings.system_sample_seconds,
        queue_depth=queue.depth,
        open_circuits=lambda: _open_circuits(router),
        agents=agent_monitor,
        queue_gauge=metrics.queue_depth,
    )
    webhook = None
    if settings.alert_webhook_url:
        secret = settings.alert_webhook_secret
        webhook = AlertWebhook(
            check_webhook_url(settings.alert_webhook_url),
            secret=secret.get_secret_value() if secret else None,
            max_attempts=settings.alert_webhook_max_attempts,
            registry=metrics.registry,
        )
    alerts = AlertManager(rules, source=source, db=db, bus=bus, registry=metrics.registry, webhook=webhook)
    alerts.check_metrics()

    async def evaluate(_sample: SystemSample) -> None:
        await alerts.evaluate()

    sampler.after_sample.append(evaluate)
    return sampler, alerts


def _open_circuits(router: ProviderRouter | None) -> int:
    if router is None:
        return 0
    return sum(1 for d in router.deployments() if d.breaker.state is CircuitState.OPEN)


class Runtime:
    """Everything a server process needs, wired together."""

    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        bus: LocalEventBus,
        queue: LocalJobQueue,
        registry: AgentRegistry,
        router: ProviderRouter | None,
        coordinator: Coordinator,
        intelligence: Intelligence,
        metrics: Metrics,
        jwt_secret: str,
        tools: dict[str, Tool] | None = None,
        mcp: McpServerPool | None = None,
        pending_specs: list[LoadedSpecs] | None = None,
        agent_monitor: AgentMonitor | None = None,
        notices: NoticeRelay | None = None,
        engine_status: EngineStatusTracker | None = None,
        ws_hub: WebSocketHub | None = None,
        memory: MemoryService | None = None,
        engines: Mapping[str, TeamEngine] | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus
        self.queue = queue
        self.registry = registry
        self.router = router
        self.coordinator = coordinator
        self.intelligence = intelligence
        self.metrics = metrics
        self.jwt_secret = jwt_secret
        # The recall engine's memory (`build_memory`); None in a runtime built without it.
        self.memory = memory
        self.engines = dict(engines or {})
        self._started = False
        self._tools = tools if tools is not None else {}
        self._mcp = mcp
        self._mcp_started = False
        self._pending_specs = pending_specs or []
        # Monitoring (`build_monitoring`): set by `create`; None in a runtime built without it.
        self.sampler: SystemSampler | None = None
        self.alerts: AlertManager | None = None
        self.agent_monitor = agent_monitor or AgentMonitor(db, registry, router, metrics)
        # Notices published from synchronous code (circuit changes, engine status) go through this relay.
        self.notices = notices or NoticeRelay(bus)
        self.engine_status = engine_status or EngineStatusTracker(
            [], queue_depth=queue.depth_by_engine, limits={}
        )
        # WebSocket connections of this process and the fan-out of bus events to them (`/ws`).
        self.ws_hub = ws_hub or WebSocketHub(
            db=db,
            bus=bus,
            metrics=WsMetrics(metrics.registry),
            send_queue=settings.ws_send_queue,
            ping_interval=settings.ws_ping_interval_seconds,
            max_subscriptions=settings.ws_max_subscriptions,
        )

    @classmethod
    def create(
        cls, settings: Settings, *, routes: Mapping[str, Sequence[Provider | Deployment]] | None = None
    ) -> Runtime:
        """Build a runtime. `routes` replaces the configured LLM routes (tests, benchmarks)."""
        settings.home.mkdir(parents=True, exist_ok=True)
        db = Database(settings.resolved_database_url)
        bus = LocalEventBus()
        db.add_event_sink(bus.publish)
        metrics = Metrics()
        tools = build_builtin_tools()
        memory = build_memory(settings, db=db)
        tools[MemorySearchTool.name] = MemorySearchTool(memory)
        registry = AgentRegistry(tool_names=tools)
        for agent in (*BUILTIN_AGENTS, *RECALL_AGENTS):
            registry.register_agent(agent)
        for task_type in (*BUILTIN_TASK_TYPES, *RECALL_TASK_TYPES):
            registry.register_task_type(task_type)
        ledger = CallLedger(db, metrics)
        if routes is None:
            routes = build_routes(settings, ledger=ledger, metrics=metrics)
        router = ProviderRouter(routes, ledger=ledger, metrics=metrics) if routes else None
        notices = NoticeRelay(bus)
        if router is not None:
            for deployment in router.deployments():
                deployment.breaker.add_listener(lambda change: notices.send(change.notice()))
        custom = load_entry_points()
        if settings.agents_dir is not None:
            custom += load_agent_dir(settings.agents_dir)
        mcp = McpServerPool(load_mcp_config(settings.mcp_servers_file)) if settings.mcp_servers_file else None
        if mcp is None:
            register_specs(registry, custom, routes=router.routes() if router else ())
            custom = []
        # else: custom agents may name MCP tools, known once the servers run (`start`).
        targets = TargetPolicy.from_settings(settings)
        runner = AgentRunner(
            tools=tools,
            router=router,
            max_tokens=settings.llm_max_tokens,
            targets=targets,
            memory=memory,
            memory_k=settings.memory_context_k,
        )
        worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        rules = build_engine_rules(settings)
        queue = LocalJobQueue(
            db,
            worker_id=worker_id,
            concurrency=settings.workers,
            lease_seconds=settings.lease_seconds,
            sweep_interval=settings.sweep_interval_seconds,
            engine_limits=rules.limits,
            aging_seconds=settings.queue_aging_seconds,
        )
        engines = build_engines(
            settings, db=db, registry=registry, runner=runner, metrics=metrics, embedder=memory.embedder
        )
        engine_status = EngineStatusTracker(
            engines,
            queue_depth=queue.depth_by_engine,
            limits=rules.limits if settings.embedded_worker else {},
            publish=notices.send,
        )
        intelligence = Intelligence(
            db=db,
            registry=registry,
            metrics=metrics,
            rng=random.Random(settings.selector_seed),
            retrain_every=settings.retrain_every,
            min_train_samples=settings.min_train_samples,
            holdout_fraction=settings.holdout_fraction,
            refresh_seconds=settings.intelligence_refresh_seconds,
            load_penalty=settings.selector_load_penalty,
        )
        coordinator = Coordinator(
            db=db,
            queue=queue,
            registry=registry,
            engines=engines,
            rules=rules,
            intelligence=intelligence,
            policy=WorkspacePolicy(roots=tuple(settings.workspace_roots)),
            metrics=metrics,
            limits=PlanLimits(
                step_timeout=settings.step_timeout_seconds,
                max_retries=settings.step_max_retries,
                max_batch_items=settings.parallel_max_items,
                batch_concurrency=settings.parallel_concurrency,
                max_candidates=settings.creative_max_candidates,
            ),
            max_input_files=settings.max_input_files,
            max_input_bytes=settings.max_body_bytes,
            targets=targets,
            engine_status=engine_status,
            memory=memory,
        )
        secret = (
            settings.jwt_secret.get_secret_value()
            if settings.jwt_secret
            else load_or_create_secret(settings.home / "jwt_secret")
        )
        runtime = cls(
            settings=settings,
            db=db,
            bus=bus,
            queue=queue,
            registry=registry,
            router=router,
            coordinator=coordinator,
            intelligence=intelligence,
            metrics=metrics,
            jwt_secret=secret,
            tools=tools,
            mcp=mcp,
            pending_specs=custom,
            agent_monitor=AgentMonitor(
                db,
                registry,
                router,
                metrics,
                window=settings.agent_metrics_window,
                alert_response_seconds=settings.agent_alert_response_seconds,
                alert_success_rate=settings.agent_alert_success_rate,
                alert_error_rate=settings.agent_alert_error_rate,
                alert_min_runs=settings.agent_alert_min_runs,
                publish=notices.send,
            ),
            notices=notices,
            engine_status=engine_status,
            engines=engines,
            memory=memory,
        )
        runtime.sampler, runtime.alerts = build_monitoring(
            settings,
            db=db,
            bus=bus,
            metrics=metrics,
            queue=queue,
            router=router,
            agent_monitor=runtime.agent_monitor,
        )
        return runtime

    def engine_step_concurrency(self, engine: str) -> int:
        """Steps in flight per task on `engine` (0 for an engine this runtime does not have)."""
        found = self.engines.get(engine)
        return found.step_concurrency if found is not None else 0

    async def start(self) -> None:
        """Start MCP servers (adding their tools and the custom agents that use them), then the worker.

        Raises:
            ConfigurationError: When an MCP server does not start, or a custom agent does not fit.
        """
        if self._mcp is not None and not self._mcp_started:
            await self._mcp.start()
            self._mcp_started = True
            mcp_tools = self._mcp.tools()
            self._tools.update(mcp_tools)
            self.registry.add_tools(mcp_tools)
            pending, self._pending_specs = self._pending_specs, []
            register_specs(self.registry, pending, routes=self.router.routes() if self.router else ())
        await self.intelligence.start()
        if self.alerts is not None:
            await self.alerts.start()  # resumes the firing alerts before the first evaluation
        if self.sampler is not None:
            self.sampler.start()
        if self.settings.embedded_worker and not self._started:
            await self.queue.start(self.coordinator.handle, on_claim=self.coordinator.record_start)
            self._started = True

    async def stop(self) -> None:
        """Stop workers, close providers and the database."""
        if self.sampler is not None:
            await self.sampler.stop()
        if self.alerts is not None:
            await self.alerts.stop()
        if self._started:
            await self.queue.stop()
            self._started = False
        await self.intelligence.stop()
        if self._mcp is not None and self._mcp_started:
            await self._mcp.aclose()
            self._mcp_started = False
        if self.router is not None:
            await self.router.aclose()
        await self.ws_hub.aclose()
        await self.notices.aclose()
        await self.bus.aclose()
        if self.memory is not None:
            await self.memory.aclose()
        await self.db.dispose()

    async def create_user(
        self, *, name: str, role: str, password: str | None = None
    ) -> tuple[user_store.User, str]:
        """Create a user with a new API key; returns the user and the key (to show once)."""
        if role not in ROLES:
            raise UnknownChoiceError(field="role", value=role, choices=ROLES)
        return await _create_user(self, name=name, role=role, password=password)

    async def bootstrap_admin(self) -> str | None:
        """Make sure an admin exists. Returns a newly generated key to show once, else None.

        With ORCHESTRION_ADMIN_API_KEY set and no admin, the admin gets that key; with neither, a
        random key is generated. There are no default credentials.
        """
        if await self.db.read(user_store.admin_exists):
            return None
        configured = self.settings.admin_api_key
        key = key_from_secret(configured.get_secret_value()) if configured else new_api_key()

        def create(tx: WriteTx) -> None:
            user = user_store.create_user(tx, name="admin", role="admin")
            user_store.add_api_key(
                tx, user_id=user.id, prefix=key.prefix, key_hash=key.digest, name="bootstrap"
            )

        await self.db.write(create)
        logger.info("created the first admin account")
        return None if configured else key.key


async def _create_user(
    runtime: Runtime, *, name: str, role: str, password: str | None
) -> tuple[user_store.User, str]:
    from orchestrion.security import hash_password

    key = new_api_key()
    password_hash = hash_password(password) if password else None

    def create(tx: WriteTx) -> user_store.User:
        user = user_store.create_user(tx, name=name, role=role, password_hash=password_hash)
        user_store.add_api_key(tx, user_id=user.id, prefix=key.prefix, key_hash=key.digest)
        return user

    return await runtime.db.write(create), key.key


def prepare_database(settings: Settings) -> str | None:
    """Migrate the database and make sure an admin exists (blocking; what `serve` does first).

    Returns a newly generated admin key to show once, or None.
    """
    import asyncio

    from orchestrion.store.migrate import upgrade_database

    upgrade_database(settings.resolved_database_url)

    async def bootstrap() -> str | None:
        runtime = Runtime.create(settings, routes={})
        try:
            return await runtime.bootstrap_admin()
        finally:
            await runtime.stop()

    return asyncio.run(bootstrap())
