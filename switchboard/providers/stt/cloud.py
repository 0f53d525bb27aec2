"""Cloud speech-to-text through Pipecat: Deepgram, AssemblyAI, OpenAI, Sarvam, ElevenLabs."""

from __future__ import annotations

import aiohttp
from pipecat.services.assemblyai.stt import AssemblyAISTTService
from pipecat.services.deepgram.stt import DeepgramSTTService
from pipecat.services.elevenlabs.stt import ElevenLabsSTTService
from pipecat.services.openai.stt import OpenAISTTService
from pipecat.services.sarvam.stt import SarvamSTTService
from pipecat.services.stt_service import STTService

from switchboard.agents.schema import STTSettings
from switchboard.providers.base import BuildContext, STTProvider, endpoint
from switchboard.providers.languages import pipecat_language
from switchboard.providers.options import DeepgramOptions


def _language(settings: STTSettings, ctx: BuildContext) -> str:
    return settings.language or ctx.language


class DeepgramSTT(STTProvider):
    def create(self, settings: STTSettings, ctx: BuildContext) -> STTService:
        options = self.options(settings)
        assert isinstance(options, DeepgramOptions)
        return DeepgramSTTService(
            api_key=ctx.credentials["api_key"],
            base_url=settings.base_url or "",
            sample_rate=ctx.sample_rate,
            settings=DeepgramSTTService.Settings(
                model=self.model(settings),
                language=_language(settings, ctx),
                smart_format=options.smart_format,
                endpointing=options.endpointing_ms,
            ),
        )


class AssemblyAISTT(STTProvider):
    def create(self, settings: STTSettings, ctx: BuildContext) -> STTService:
        return AssemblyAISTTService(
            api_key=ctx.credentials["api_key"],
            **endpoint("api_endpoint_base_url", settings.base_url),
            sample_rate=ctx.sample_rate,
            settings=AssemblyAISTTService.Settings(
                model=self.model(settings), language=pipecat_language(_language(settings, ctx))
            ),
        )


class OpenAISTT(STTProvider):
    def create(self, settings: STTSettings, ctx: BuildContext) -> STTService:
        return OpenAISTTService(
            api_key=ctx.credentials["api_key"],
            base_url=settings.base_url,
            sample_rate=ctx.sample_rate,
            settings=OpenAISTTService.Settings(
                model=self.model(settings), language=pipecat_language(_language(settings, ctx))
            ),
        )


class SarvamSTT(STTProvider):
    def create(self, settings: STTSettings, ctx: BuildContext) -> STTService:
        return SarvamSTTService(
            api_key=ctx.credentials["api_key"],
            model=self.model(settings),
            sample_rate=ctx.sample_rate,
            settings=SarvamSTTService.Settings(language=pipecat_language(_language(settings, ctx))),
        )


class ElevenLabsSTT(STTProvider):
    """ElevenLabs transcribes over HTTP; the service needs an aiohttp session it does not own."""

    def create(self, settings: STTSettings, ctx: BuildContext) -> STTService:
        return ElevenLabsSTTService(
            api_key=ctx.credentials["api_key"],
            aiohttp_session=_session(ctx),
            **endpoint("base_url", settings.base_url),
            sample_rate=ctx.sample_rate,
            settings=ElevenLabsSTTService.Settings(
                model=self.model(settings), language=pipecat_language(_language(settings, ctx))
            ),
        )


def _session(ctx: BuildContext) -> aiohttp.ClientSession:
    """The process's shared HTTP session, for services that borrow one."""
    if ctx.http is None:
        raise RuntimeError("this provider needs the shared HTTP session of a running server")
    return ctx.http
