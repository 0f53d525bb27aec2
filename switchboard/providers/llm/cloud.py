"""Cloud language models through Pipecat's services, and any OpenAI-compatible endpoint."""

from __future__ import annotations

from typing import Any

from pipecat.services.anthropic.llm import AnthropicLLMService
from pipecat.services.google.llm import GoogleLLMService
from pipecat.services.llm_service import LLMService
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.services.xai.llm import GrokLLMService

from switchboard.agents.schema import LLMSettings
from switchboard.providers.base import BuildContext, LLMProvider, endpoint


class CloudLLM(LLMProvider):
    """The settings every cloud LLM service takes the same way."""

    def common(self, settings: LLMSettings, ctx: BuildContext) -> dict[str, Any]:
        return {
            "model": self.model(settings),
            "system_instruction": ctx.system_instruction,
            "temperature": settings.temperature,
            "max_tokens": settings.max_tokens,
        }


class OpenAILLM(CloudLLM):
    def create(self, settings: LLMSettings, ctx: BuildContext) -> LLMService[Any]:
        return OpenAILLMService(
            api_key=ctx.credentials["api_key"],
            base_url=settings.base_url,
            settings=OpenAILLMService.Settings(**self.common(settings, ctx)),
        )


class OpenAICompatibleLLM(CloudLLM):
    """Ollama, vLLM, a llama.cpp server...: the OpenAI wire protocol at ``base_url``."""

    def create(self, settings: LLMSettings, ctx: BuildContext) -> LLMService[Any]:
        return OpenAILLMService(
            # The client library insists on a key; local servers ignore it.
            api_key=ctx.credentials.get("api_key", "not-needed"),
            base_url=settings.base_url,
            settings=OpenAILLMService.Settings(**self.common(settings, ctx)),
        )


class GeminiLLM(CloudLLM):
    def create(self, settings: LLMSettings, ctx: BuildContext) -> LLMService[Any]:
        return GoogleLLMService(
            api_key=ctx.credentials["api_key"],
            settings=GoogleLLMService.Settings(**self.common(settings, ctx)),
        )


class GrokLLM(CloudLLM):
    def create(self, settings: LLMSettings, ctx: BuildContext) -> LLMService[Any]:
        return GrokLLMService(
            api_key=ctx.credentials["api_key"],
            **endpoint("base_url", settings.base_url),
            settings=GrokLLMService.Settings(**self.common(settings, ctx)),
        )


class AnthropicLLM(CloudLLM):
    def create(self, settings: LLMSettings, ctx: BuildContext) -> LLMService[Any]:
        return AnthropicLLMService(
            api_key=ctx.credentials["api_key"],
            settings=AnthropicLLMService.Settings(**self.common(settings, ctx)),
        )
