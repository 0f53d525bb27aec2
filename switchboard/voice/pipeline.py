"""From an agent's runtime config to a Pipecat pipeline for one call.

transport in → STT → user context (VAD, end of turn, idle) → LLM (+tools) → TTS
→ transport out → tap (events, latency, usage) → recorder → assistant context
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import WebSocket
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.frames.frames import Frame, TTSStoppedFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.audio.audio_buffer_processor import AudioBufferProcessor
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.serializers.base_serializer import FrameSerializer
from pipecat.transports.websocket.fastapi import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)
from pipecat.turns.user_mute.always_user_mute_strategy import AlwaysUserMuteStrategy
from pipecat.turns.user_mute.base_user_mute_strategy import BaseUserMuteStrategy
from pipecat.turns.user_start.base_user_turn_start_strategy import BaseUserTurnStartStrategy
from pipecat.turns.user_start.min_words_user_turn_start_strategy import (
    MinWordsUserTurnStartStrategy,
)
from pipecat.turns.user_start.vad_user_turn_start_strategy import VADUserTurnStartStrategy
from pipecat.turns.user_stop.base_user_turn_stop_strategy import BaseUserTurnStopStrategy
from pipecat.turns.user_stop.speech_timeout_user_turn_stop_strategy import (
    SpeechTimeoutUserTurnStopStrategy,
)
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.utils.types import NOT_GIVEN

from switchboard.agents.schema import AgentConfig, PipelineSettings
from switchboard.providers.base import BuildContext
from switchboard.providers.build import SwitchHandler, build_service
from switchboard.providers.spec import ProviderKind
from switchboard.telephony.serializers import flush_audio_frame
from switchboard.voice.language import LanguageFollower, LanguageSwitched
from switchboard.voice.machine_detection.detector import MachineDetector, MachineMuteStrategy
from switchboard.voice.tap import BotSpeech, CallMeter, CallTap


@dataclass
class CallPipeline:
    """The parts of a built call that the session talks to."""

    worker: PipelineWorker
    transport: FastAPIWebsocketTransport
    context: LLMContext
    aggregators: LLMContextAggregatorPair
    llm: FrameProcessor
    recorder: AudioBufferProcessor
    meter: CallMeter
    speech: BotSpeech


def vad_analyzer(settings: PipelineSettings) -> SileroVADAnalyzer:
    vad = settings.vad
    return SileroVADAnalyzer(
        params=VADParams(
            confidence=vad.confidence,
            start_secs=vad.start_seconds,
            stop_secs=vad.stop_seconds,
            min_volume=vad.min_volume,
        )
    )


def user_params(settings: PipelineSettings) -> LLMUserAggregatorParams:
    start: list[BaseUserTurnStartStrategy] = [VADUserTurnStartStrategy()]
    if settings.interruption_min_words:
        start = [MinWordsUserTurnStartStrategy(min_words=settings.interruption_min_words)]
    # "smart_turn" keeps Pipecat's default stop strategy (the bundled Smart Turn v3 model).
    stop: list[BaseUserTurnStopStrategy] | None = None
    if settings.turn_detection == "vad":
        # The VAD already waited stop_seconds of silence; waiting again would only add latency.
        stop = [SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0.0)]
    mute: list[BaseUserMuteStrategy] = []
    if not settings.allow_interruptions:
        mute = [AlwaysUserMuteStrategy()]  # type: ignore[no-untyped-call]
    return LLMUserAggregatorParams(
        vad_analyzer=vad_analyzer(settings),
        user_turn_strategies=UserTurnStrategies(start=start, stop=stop),
        user_mute_strategies=mute,
        user_idle_timeout=settings.idle_reprompt_seconds,
    )


class TurnFlusher(FrameProcessor):
    """After each spoken turn, tells a buffering serializer (Exotel's) to send what it holds.

    Only in pipelines whose serializer buffers, since it adds a hop to every agent frame.
    """

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if isinstance(frame, TTSStoppedFrame) and direction is FrameDirection.DOWNSTREAM:
            await self.push_frame(flush_audio_frame())


def _names(processor: FrameProcessor) -> list[str]:
    """The processor's name and, for a failover switcher, its services' names."""
    services = getattr(processor, "services", None)
    names = [processor.name]
    if isinstance(services, list):
        names += [s.name for s in services]
    return names


def build_call_pipeline(
    *,
    websocket: WebSocket,
    serializer: FrameSerializer,
    sample_rate: int,
    flush_after_turns: bool,
    config: AgentConfig,
    system_prompt: str,
    tools: list[FunctionSchema],
    credentials: Mapping[str, Mapping[str, str]],
    local: Any,
    http: Any,
    on_switch: SwitchHandler,
    on_event: Any,
    on_language: LanguageSwitched,
    machine_detector: MachineDetector | None = None,
) -> CallPipeline:
    """Build every per-call object; nothing here talks to the network yet.

    With a ``machine_detector`` (an outbound call whose carrier did not say who answered),
    it hears the callee first, holds the agent's speech until it has decided, and mutes
    the callee for the LLM once it hears a machine.
    """
    transport = FastAPIWebsocketTransport(
        websocket,
        FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            add_wav_header=False,
            serializer=serializer,
            session_timeout=None,
        ),
    )
    ctx = BuildContext(
        sample_rate=sample_rate,
        language=config.language,
        local=local,
        http=http,
        system_instruction=system_prompt,
    )
    stt = build_service(
        ProviderKind.STT, [config.stt, *config.fallbacks.stt], ctx, credentials, on_switch
    )
    llm = build_service(
        ProviderKind.LLM, [config.llm, *config.fallbacks.llm], ctx, credentials, on_switch
    )
    tts = build_service(
        ProviderKind.TTS, [config.tts, *config.fallbacks.tts], ctx, credentials, on_switch
    )
    context = LLMContext(tools=ToolsSchema(standard_tools=tools) if tools else NOT_GIVEN)
    params = user_params(config.pipeline)
    if machine_detector is not None:
        params.user_mute_strategies.append(MachineMuteStrategy(machine_detector))
    aggregators = LLMContextAggregatorPair(context, user_params=params)
    meter = CallMeter(vad_stop_secs=config.pipeline.vad.stop_seconds)
    for kind, processor in (("stt", stt), ("llm", llm), ("tts", tts)):
        for name in _names(processor):
            meter.kinds[name] = kind
    tap = CallTap(meter, on_event)
    recorder = AudioBufferProcessor(
        sample_rate=sample_rate, num_channels=2, buffer_size=sample_rate * 2 * 2 * 5
    )
    steps: list[FrameProcessor] = [transport.input()]
    steps += [machine_detector] if machine_detector is not None else []
    steps.append(stt)
    if len(config.supported_languages) > 1:
        steps.append(
            LanguageFollower(
                language=config.language,
                supported=config.supported_languages,
                system_prompt=system_prompt,
                on_switch=on_language,
            )
        )
    pipeline = Pipeline(
        [
            *steps,
            aggregators.user(),
            llm,
            tts,
            *([TurnFlusher()] if flush_after_turns else []),
            *([machine_detector.gate()] if machine_detector is not None else []),
            transport.output(),
            tap,
            recorder,
            aggregators.assistant(),
        ]
    )
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(
            audio_in_sample_rate=sample_rate,
            audio_out_sample_rate=sample_rate,
            enable_metrics=True,
            enable_usage_metrics=True,
        ),
        enable_rtvi=False,
        idle_timeout_secs=None,
    )
    return CallPipeline(
        worker=worker,
        transport=transport,
        context=context,
        aggregators=aggregators,
        llm=llm,
        recorder=recorder,
        meter=meter,
        speech=tap.speech,
    )
