"""/api/v1/providers: routes, deployments, circuit state, latency, error rate, tokens and cost to date.

Usage comes from the call ledger, so it is to date and covers every worker sharing the database.
Circuit and limiter state are this process's: each server process keeps its own breakers.
"""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from orchestrion.api.deps import CallerDep, RuntimeDep
from orchestrion.api.schemas import (
    CircuitPublic,
    DeploymentPublic,
    DeploymentUsagePublic,
    LimitsPublic,
    PricePublic,
    ProvidersPublic,
)
from orchestrion.domain.llm import DeploymentUsage
from orchestrion.store.llm_calls import read_deployment_usage

router = APIRouter(tags=["providers"])


@router.get("/providers", response_model=ProvidersPublic)
async def read_providers(_caller: CallerDep, runtime: RuntimeDep) -> ProvidersPublic:
    """Every route and deployment with its health and spending."""
    llm = runtime.router
    if llm is None:
        return ProvidersPublic(routes={}, deployments=[])
    await llm.flush()
    usage = await runtime.db.read(read_deployment_usage)
    routes = llm.routes()
    deployments = []
    for deployment in llm.deployments():
        config = deployment.config
        breaker = deployment.breaker.status()
        limiter = deployment.limiter.status()
        deployments.append(
            DeploymentPublic(
                name=deployment.name,
                provider=config.provider,
                model=config.model,
                routes=[route for route, names in routes.items() if deployment.name in names],
                price=PricePublic(**asdict(deployment.price)) if deployment.price else None,
                circuit=CircuitPublic(**(asdict(breaker) | {"state": breaker.state.value})),
                limits=LimitsPublic(**asdict(config.limits), **asdict(limiter)),
                usage=DeploymentUsagePublic(**asdict(usage.get(deployment.name, DeploymentUsage()))),
            )
        )
    return ProvidersPublic(routes=routes, deployments=deployments)
