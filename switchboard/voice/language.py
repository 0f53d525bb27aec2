"""Following the caller's language: when the caller speaks another language the agent
supports, the agent answers in it (TTS language and the LLM's instruction switch)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pipecat.frames.frames import (
    Frame,
    LLMUpdateSettingsFrame,
    TranscriptionFrame,
    TTSUpdateSettingsFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.settings import LLMSettings, TTSSettings

from switchboard.providers.languages import pipecat_language

LanguageSwitched = Callable[[str, str], Awaitable[None]]


def base_language(tag: str) -> str:
    return tag.split("-")[0].lower()


class LanguageFollower(FrameProcessor):
    """Sits after STT; switches the reply language on a transcript in a supported language."""

    def __init__(
        self,
        *,
        language: str,
        supported: list[str],
        system_prompt: str,
        on_switch: LanguageSwitched,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.current = language
        self._supported = {base_language(tag): tag for tag in supported}
        self._system_prompt = system_prompt
        self._on_switch = on_switch

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TranscriptionFrame) and frame.language is not None:
            await self._follow(str(frame.language.value))
        await self.push_frame(frame, direction)

    async def _follow(self, heard: str) -> None:
        tag = self._supported.get(base_language(heard))
        if tag is None or base_language(tag) == base_language(self.current):
            return
        previous, self.current = self.current, tag
        instruction = f"{self._system_prompt}\n\nThe caller speaks {tag}: always reply in {tag}."
        await self.push_frame(
            TTSUpdateSettingsFrame(delta=TTSSettings(language=pipecat_language(tag)))
        )
        await self.push_frame(
            LLMUpdateSettingsFrame(delta=LLMSettings(system_instruction=instruction))
        )
        await self._on_switch(previous, tag)
