"""Cloud language models through Pipecat's services, and any OpenAI-compatible endpoint."""

from __future__ import annotations

from typing import Any

from pipecat.services.anthropic.llm import AnthropicLLMService
from pipecat.services.google.llm import GoogleLLMService
from pipecat.services.llm_service import LLMService
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.services.xai.llm import GrokLLMService

from switchboard.agents.schema import LLMSettings
from switchboard.providers.base import BuildContext, LLMProvider


class OpenAILLM(LLMProvider):
    def create(self, settings: LLMSettings, ctx: BuildContext) -> LLMService[Any]:
        return OpenAILLMService(
            api_key=ctx.credentials["api_key"],
            base_url=settings.base_url,
            settings=OpenAILLMService.Settings(
                model=self.model(settings),
                system_instruction=ctx.system_instruction,
                temperature=settings.temperature,
                max_tokens=settings.max_tokens,
            ),
        )


class OpenAICompatibleLLM(LLMProvider):
    """Ollama, vLLM, a llama.cpp server...: the OpenAI wire protocol at ``base_url``."""

    def create(self, settings: LLMSettings, ctx: BuildContext) -> LLMService[Any]:
        return OpenAILLMService(
            # The client library insists on a key; local servers ignore it.
            api_key=ctx.credentials.get("api_key", "not-needed"),
            base_url=settings.base_url,
            settings=OpenAILLMService.Settings(
                model=self.model(settings),
                system_instruction=ctx.system_instruction,
                temperature=settings.temperature,
                max_tokens=settings.max_tokens,
            ),
        )


class GeminiLLM(LLMProvider):
    def create(self, settings: LLMSettings, ctx: BuildContext) -> LLMService[Any]:
        return GoogleLLMService(
            api_key=ctx.credentials["api_key"],
            settings=GoogleLLMService.Settings(
                model=self.model(settings),
                system_instruction=ctx.system_instruction,
                temperature=settings.temperature,
                max_tokens=settings.max_tokens,
            ),
        )


class GrokLLM(LLMProvider):
    def create(self, settings: LLMSettings, ctx: BuildContext) -> LLMService[Any]:
        return GrokLLMService(
            api_key=ctx.credentials["api_key"],
            **({"base_url": settings.base_url} if settings.base_url else {}),
            settings=GrokLLMService.Settings(
                model=self.model(settings),
                system_instruction=ctx.system_instruction,
                temperature=settings.temperature,
                max_tokens=settings.max_tokens,
            ),
        )


class AnthropicLLM(LLMProvider):
    def create(self, settings: LLMSettings, ctx: BuildContext) -> LLMService[Any]:
        return AnthropicLLMService(
            api_key=ctx.credentials["api_key"],
            settings=AnthropicLLMService.Settings(
                model=self.model(settings),
                system_instruction=ctx.system_instruction,
                temperature=settings.temperature,
                max_tokens=settings.max_tokens,
            ),
        )
