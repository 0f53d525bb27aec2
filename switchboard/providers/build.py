"""Building a call's STT, LLM and TTS from an agent's settings, with fallbacks.

With fallbacks configured, the services are wrapped in Pipecat's
``ServiceSwitcher`` with the failover strategy: when the active service
reports an error that leaves it unusable, the next one takes over and the
call continues; ``on_switch`` is told so the call can record it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from pipecat.pipeline.service_switcher import ServiceSwitcher, ServiceSwitcherStrategyFailover
from pipecat.processors.frame_processor import FrameProcessor

from switchboard.agents.schema import LLMSettings, STTSettings, TTSSettings
from switchboard.providers.base import BuildContext
from switchboard.providers.registry import load_adapter
from switchboard.providers.spec import ProviderKind

SwitchHandler = Callable[[ProviderKind, str, str], Awaitable[None]]


def build_service(
    kind: ProviderKind,
    chain: Sequence[STTSettings | LLMSettings | TTSSettings],
    ctx: BuildContext,
    credentials: Mapping[str, Mapping[str, str]],
    on_switch: SwitchHandler | None = None,
) -> FrameProcessor:
    """One service for ``chain[0]``, or a failover switcher over the whole chain.

    ``credentials`` maps provider id to that provider's decrypted secrets.
    """
    services: list[FrameProcessor] = []
    names: dict[int, str] = {}
    for settings in chain:
        adapter = load_adapter(kind, settings.provider)
        service = adapter.create(
            settings, replace(ctx, credentials=credentials.get(settings.provider, {}))
        )
        names[id(service)] = settings.provider
        services.append(service)
    if len(services) == 1:
        return services[0]
    switcher: ServiceSwitcher[Any] = ServiceSwitcher(services, ServiceSwitcherStrategyFailover)
    active = {"provider": chain[0].provider}

    async def switched(_strategy: object, service: FrameProcessor) -> None:
        previous, active["provider"] = active["provider"], names.get(id(service), service.name)
        if on_switch is not None:
            await on_switch(kind, previous, active["provider"])

    switcher.strategy.add_event_handler("on_service_switched", switched)
    return switcher
