"""Team selection: capability match, Thompson sampling over learned reward, and a load penalty.

Candidates are the specialists registered for the task type. The team must cover every required
capability (each by at least one member); a capability no candidate offers is refused with the ones
on offer. The team has as many members as the type's default team.

Each candidate's reward on the type (a succeeded step earns the task's report quality in 0..1, a
failed one 0) has a Beta posterior; members of the default team start with one extra success, the
designer's choice being a weak prior. For each submission every candidate draws a sample from its
posterior and is scored ``sample - load_penalty * running_steps``; required capabilities are covered
first by the best-scoring candidate offering each, then the best scores fill the team. Exploration
comes from the sampling itself: an agent with few runs has a wide posterior and is sometimes drawn
high.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from orchestrion.agents.registry import AgentRegistry
from orchestrion.domain.intelligence import AgentScore, Selection
from orchestrion.exceptions import ValidationError
from orchestrion.intelligence.history import History

DEFAULT_TEAM_BONUS = 1.0


class ThompsonSelector:
    """Chooses specialists for a submission; see the module docstring."""

    def __init__(
        self, registry: AgentRegistry, *, rng: random.Random | None = None, load_penalty: float = 0.1
    ):
        self._registry = registry
        self._rng = rng or random.Random()
        self._load_penalty = load_penalty

    def select(
        self,
        task_type: str,
        *,
        requested: Sequence[str] | None,
        required_capabilities: Sequence[str],
        history: History,
        loads: Mapping[str, int],
    ) -> Selection:
        """The team for a task of `task_type`.

        Raises:
            UnknownChoiceError: (``field="agents"``) a requested agent unknown or unfit for the type.
            ValidationError: (``field="required_capabilities"``) a capability no candidate offers.
        """
        spec = self._registry.task_type(task_type)
        required = tuple(dict.fromkeys(required_capabilities))
        if requested:
            explicit, reason = self._registry.select_team(task_type, requested)
            self._check_coverage(explicit, required, field="required_capabilities")
            return Selection(
                strategy="explicit", team=explicit, required_capabilities=required, reasons=(reason,)
            )
        candidates = self._registry.specialists_for(task_type)
        self._check_coverage(candidates, required, field="required_capabilities")
        size = max(1, min(len(spec.default_agents) or 1, len(candidates)))

        scored: dict[str, tuple[float, float, float, float]] = {}
        for agent_id in candidates:
            stats = history.agent_stats(agent_id, task_type)
            bonus = DEFAULT_TEAM_BONUS if agent_id in spec.default_agents else 0.0
            alpha, beta = stats.alpha + bonus, stats.beta
            sample = self._rng.betavariate(alpha, beta) if len(candidates) > size else alpha / (alpha + beta)
            score = sample - self._load_penalty * loads.get(agent_id, 0)
            scored[agent_id] = (score, sample, alpha, beta)
        order = sorted(candidates, key=lambda a: (-scored[a][0], a))

        team: list[str] = []
        why: dict[str, str] = {}
        for capability in required:
            if any(capability in self._registry.agent(a).capabilities for a in team):
                continue
            best = next(a for a in order if capability in self._registry.agent(a).capabilities)
            team.append(best)
            why[best] = f"best score among agents offering {capability}"
        for agent_id in order:
            if len(team) >= size:
                break
            if agent_id not in team:
                team.append(agent_id)
                why[agent_id] = "best score" if len(candidates) > size else "the only candidates"

        strategy = "thompson" if len(candidates) > size else "only_candidates"
        scores = []
        for agent_id in order:
            score, sample, alpha, beta = scored[agent_id]
            stats = history.agent_stats(agent_id, task_type)
            chosen = agent_id in team
            scores.append(
                AgentScore(
                    agent_id=agent_id,
                    runs=stats.runs,
                    success_mean=round(stats.success_rate, 4),
                    quality_mean=round(stats.quality_mean or 0.0, 4),
                    sample=round(sample, 4),
                    load=loads.get(agent_id, 0),
                    score=round(score, 4),
                    chosen=chosen,
                    reason=why.get(agent_id, "scored lower"),
                )
            )
        reasons = tuple(
            f"{s.agent_id}: {s.reason}; sampled {s.sample:.2f} from Beta({scored[s.agent_id][2]:g}, "
            f"{scored[s.agent_id][3]:g}) over {s.runs} runs on {task_type}, load {s.load}"
            for s in scores
            if s.chosen
        )
        if strategy == "only_candidates":
            reasons = (f"every agent able to work on {task_type} is on the team",)
        ordered_team = tuple(a for a in order if a in team)
        return Selection(
            strategy=strategy,
            team=ordered_team,
            candidates=tuple(scores),
            required_capabilities=required,
            reasons=reasons,
        )

    def _check_coverage(self, agents: Sequence[str], required: Sequence[str], *, field: str) -> None:
        offered = {c for a in agents for c in self._registry.agent(a).capabilities}
        missing = [c for c in required if c not in offered]
        if missing:
            raise ValidationError(
                f"no agent for this task offers {', '.join(missing)}; offered: {', '.join(sorted(offered))}",
                field=field,
                choices=sorted(offered),
            )
