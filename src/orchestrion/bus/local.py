"""In-process event fan-out for the embedded mode."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from orchestrion.bus.base import EventBus, NoticeSubscription, Subscription
from orchestrion.domain.events import Event, Notice


class LocalEventBus(EventBus):
    """Fan-out to subscriptions in this process."""

    def __init__(self) -> None:
        self._subs: defaultdict[str | None, set[Subscription]] = defaultdict(set)
        self._channels: defaultdict[str, set[NoticeSubscription]] = defaultdict(set)

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

    async def publish_notice(self, notice: Notice) -> None:
        subs = self._channels.get(notice.channel)
        if not subs:
            return
        for sub in tuple(subs):
            sub.offer(notice)
            if sub.closed:
                subs.discard(sub)

    def subscribe_channel(self, channel: str, *, maxsize: int = 1000) -> NoticeSubscription:
        sub = NoticeSubscription(channel, maxsize=maxsize)
        self._channels[channel].add(sub)
        return sub

    def unsubscribe_channel(self, subscription: NoticeSubscription) -> None:
        subs = self._channels.get(subscription.channel)
        if subs is not None:
            subs.discard(subscription)
            if not subs:
                del self._channels[subscription.channel]
        subscription.close()

    def subscriber_count(self) -> int:
        """Live subscriptions (for metrics)."""
        return sum(len(s) for s in self._subs.values()) + sum(len(s) for s in self._channels.values())

    async def aclose(self) -> None:
        for subs in list(self._subs.values()):
            for sub in subs:
                sub.close()
        self._subs.clear()
        for channel_subs in list(self._channels.values()):
            for channel_sub in channel_subs:
                channel_sub.close()
        self._channels.clear()
