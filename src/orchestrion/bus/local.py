"""In-process event fan-out for the embedded mode."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from orchestrion.bus.base import EventBus, Subscription
from orchestrion.domain.events import Event


class LocalEventBus(EventBus):
    """Fan-out to subscriptions in this process."""

    def __init__(self) -> None:
        self._subs: defaultdict[str | None, set[Subscription]] = defaultdict(set)

    async def publish(self, events: Sequence[Event]) -> None:
        for event in events:
            for key in (event.task_id, None):
                for sub in tuple(self._subs.get(key, ())):
                    sub.offer(event)
                    if sub.closed:
                        self._subs[key].discard(sub)

    def subscribe(self, task_id: str | None = None, *, maxsize: int = 1000) -> Subscription:
        sub = Subscription(task_id, maxsize=maxsize)
        self._subs[task_id].add(sub)
        return sub

    def unsubscribe(self, subscription: Subscription) -> None:
        subs = self._subs.get(subscription.task_id)
        if subs is not None:
            subs.discard(subscription)
            if not subs:
                del self._subs[subscription.task_id]
        subscription.close()

    def subscriber_count(self) -> int:
        """Live subscriptions (for metrics)."""
        return sum(len(s) for s in self._subs.values())

    async def aclose(self) -> None:
        for subs in list(self._subs.values()):
            for sub in subs:
                sub.close()
        self._subs.clear()
