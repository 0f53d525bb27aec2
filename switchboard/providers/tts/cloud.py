"""Cloud text-to-speech through Pipecat: Cartesia, ElevenLabs, Sarvam, Deepgram, OpenAI."""

from __future__ import annotations

from pipecat.services.cartesia.tts import CartesiaTTSService
from pipecat.services.deepgram.tts import DeepgramTTSService
from pipecat.services.elevenlabs.tts import ElevenLabsTTSService
from pipecat.services.openai.tts import OpenAITTSService
from pipecat.services.sarvam.tts import SarvamTTSService
from pipecat.services.tts_service import TTSService

from switchboard.agents.schema import TTSSettings
from switchboard.providers.base import BuildContext, TTSProvider, endpoint
from switchboard.providers.languages import pipecat_language


class CartesiaTTS(TTSProvider):
    def create(self, settings: TTSSettings, ctx: BuildContext) -> TTSService:
        return CartesiaTTSService(
            api_key=ctx.credentials["api_key"],
            **endpoint("url", settings.base_url),
            sample_rate=ctx.sample_rate,
            settings=CartesiaTTSService.Settings(
                model=self.model(settings),
                voice=self.voice(settings),
                language=pipecat_language(ctx.language),
            ),
        )


class ElevenLabsTTS(TTSProvider):
    def create(self, settings: TTSSettings, ctx: BuildContext) -> TTSService:
        return ElevenLabsTTSService(
            api_key=ctx.credentials["api_key"],
            **endpoint("url", settings.base_url),
            sample_rate=ctx.sample_rate,
            settings=ElevenLabsTTSService.Settings(
                model=self.model(settings),
                voice=self.voice(settings),
                language=pipecat_language(ctx.language),
                speed=settings.speed,
            ),
        )


class SarvamTTS(TTSProvider):
    def create(self, settings: TTSSettings, ctx: BuildContext) -> TTSService:
        return SarvamTTSService(
            api_key=ctx.credentials["api_key"],
            **endpoint("url", settings.base_url),
            sample_rate=ctx.sample_rate,
            settings=SarvamTTSService.Settings(
                model=self.model(settings),
                voice=self.voice(settings),
                language=pipecat_language(ctx.language),
                pace=settings.speed,
            ),
        )


class DeepgramTTS(TTSProvider):
    def create(self, settings: TTSSettings, ctx: BuildContext) -> TTSService:
        return DeepgramTTSService(
            api_key=ctx.credentials["api_key"],
            **endpoint("base_url", settings.base_url),
            sample_rate=ctx.sample_rate,
            settings=DeepgramTTSService.Settings(voice=self.voice(settings), speed=settings.speed),
        )


class OpenAITTS(TTSProvider):
    """OpenAI speaks at 24 kHz only; the service resamples to the pipeline rate."""

    def create(self, settings: TTSSettings, ctx: BuildContext) -> TTSService:
        return OpenAITTSService(
            api_key=ctx.credentials["api_key"],
            base_url=settings.base_url,
            sample_rate=24000,
            settings=OpenAITTSService.Settings(
                model=self.model(settings), voice=self.voice(settings), speed=settings.speed
            ),
        )
