"""CallSession: one live call, from the answered media socket to the finished record.

The session owns every per-call resource (pipeline, timers, recording file,
call slot) and releases all of them in ``finally``, however the call ends:
the agent hangs up, the caller hangs up, the socket drops, a provider fails,
or the task is cancelled. The call record is always finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from fastapi import WebSocket
from pipecat.frames.frames import EndFrame, LLMRunFrame, TTSSpeakFrame
from pipecat.processors.aggregators.llm_response_universal import (
    AssistantTurnStoppedMessage,
    UserTurnStoppedMessage,
)
from pipecat.workers.runner import WorkerRunner

from switchboard.agents.schema import RuntimeConfig, ToolSpec
from switchboard.agents.template import render
from switchboard.calls.recorder import CallRecorder
from switchboard.calls.recording import StereoWavWriter, recording_path
from switchboard.db.base import utcnow
from switchboard.db.models import Call, CallDirection, CallStatus
from switchboard.dialer.campaign_calls import CampaignCall
from switchboard.providers.spec import ProviderKind
from switchboard.telephony.carrier import MediaEndpoint, StreamStart, is_machine
from switchboard.tools.loading import ToolPolicy, WebhookTool
from switchboard.tools.safe_http import SafeHttpClient
from switchboard.voice.flow import CallFlow
from switchboard.voice.functions import CallFunction
from switchboard.voice.machine_policy import MachinePolicy, needs_detector
from switchboard.voice.pipeline import CallPipeline, build_call_pipeline
from switchboard.voice.precall import run_pre_call_tools
from switchboard.voice.tools import BuiltinTools
from switchboard.voice.webhooks import WebhookRunner

log = logging.getLogger(__name__)

MAX_DURATION_MESSAGE = (
    "We have reached the time limit for this call. Thank you for calling, goodbye."
)
IDLE_GOODBYE = "I have not heard from you, so I will hang up now. Goodbye."
KEPT_WORK_SECONDS = 10.0  # how long a call's end waits for what its tools must record

T = TypeVar("T")


@dataclass
class CallInputs:
    """Everything the media route resolved before the session starts."""

    call: Call
    runtime: RuntimeConfig
    carrier: MediaEndpoint  # a phone carrier, or a browser page
    start: StreamStart
    websocket: WebSocket
    credentials: Mapping[str, Mapping[str, str]]
    variables: dict[str, Any]
    recordings_dir: Path
    local: Any = None
    http: Any = None
    # The workspace's webhook tools this agent may use, by name, and how to reach them.
    webhook_tools: Mapping[str, WebhookTool] = field(default_factory=dict)
    tool_policy: ToolPolicy | None = None
    tool_client: SafeHttpClient | None = None  # tests pass one with their own resolver
    campaign: CampaignCall | None = None  # a campaign call's prospect and rules


class CallSession:
    def __init__(self, inputs: CallInputs, recorder: CallRecorder) -> None:
        self.inputs = inputs
        self.recorder = recorder
        self.config = inputs.runtime.config
        self.end_reason = "hangup"
        self.final_status = CallStatus.COMPLETED
        self._ending = False
        self._idle_prompts = 0
        self._timers: list[asyncio.Task[None]] = []
        self._kept: set[asyncio.Task[Any]] = set()
        self._wav: StereoWavWriter | None = None
        self._built: CallPipeline | None = None
        self._user_started_at: datetime | None = None
        self._flow: CallFlow | None = None
        self._machines: MachinePolicy | None = None
        self.webhooks = WebhookRunner(
            inputs.tool_client or _tool_client(inputs.tool_policy),
            event=recorder.event,
            say=self._say_while_waiting,
            call_headers={
                "X-Switchboard-Call-Id": inputs.call.id,
                "X-Switchboard-Agent-Id": inputs.runtime.agent_id,
            },
        )

    # -- lifecycle -----------------------------------------------------------------

    async def run(self) -> None:
        """Run the call to its end and leave a finished record, whatever happens."""
        call = self.inputs.call
        try:
            # The media socket already moved the call to IN_PROGRESS when it claimed it.
            await self.recorder.event(
                "call_started",
                carrier=call.carrier,
                direction=call.direction.value,
                from_number=call.from_number,
                to_number=call.to_number,
                agent_version=self.inputs.runtime.version,
            )
            await self._pre_call()
            self._built = self._build()
            self._start_timers()
            runner = WorkerRunner(handle_sigint=False)
            await runner.add_workers(self._built.worker)
            await runner.run()
        except asyncio.CancelledError:
            self.end_reason = "cancelled"
            raise
        except Exception as exc:
            log.exception("call %s failed", call.id)
            self.end_reason, self.final_status = "error", CallStatus.FAILED
            await self.recorder.event("error", message=str(exc) or type(exc).__name__, fatal=True)
        finally:
            await asyncio.shield(self._finish())

    async def keep(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` to its end even if the call ends meanwhile; the call's record is
        finished only after it.

        The pipeline's teardown cancels the function calls still running: the agent's
        ``end_call`` in the same turn, or the callee hanging up, would otherwise lose what a
        tool was recording for the callee, or let it land after the hopper had settled the
        ended call (it reads a prospect's disposition once the call is final).
        """
        task = asyncio.ensure_future(work)
        self._kept.add(task)
        task.add_done_callback(self._kept.discard)
        return await asyncio.shield(task)

    async def _finish(self) -> None:
        for timer in self._timers:
            timer.cancel()
        for timer in self._timers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await timer
        if self._kept:
            await asyncio.wait(set(self._kept), timeout=KEPT_WORK_SECONDS)
        fields: dict[str, Any] = {}
        if self._built is not None:
            fields["latency"] = self._built.meter.latency_summary()
            fields["usage"] = self._built.meter.usage
        if self._wav is not None:
            self._wav.close()
            fields["recording_path"] = str(self._wav.path)
            fields["usage"] = {**fields.get("usage", {}), "audio_seconds": self._wav.seconds}
        try:
            if self.end_reason == "caller_hung_up" and await self.recorder.has_event(
                "hangup_requested"
            ):
                # The API asked the carrier to hang up (this session may run elsewhere).
                self.end_reason = "hung_up_by_api"
            await self.recorder.move(self.final_status, self.end_reason, **fields)
            await self.recorder.event("call_ended", reason=self.end_reason)
        except Exception:
            log.exception("call %s: could not finish its record", self.inputs.call.id)

    # -- building ------------------------------------------------------------------

    def _webhook_tools(self, specs: list[ToolSpec]) -> list[WebhookTool]:
        """The loaded tools (with secrets) for the runtime config's ``specs``, where usable."""
        by_id = {tool.id: tool for tool in self.inputs.webhook_tools.values()}
        return [by_id[spec.id] for spec in specs if spec.id in by_id]

    async def _pre_call(self) -> None:
        tools = self._webhook_tools(self.inputs.runtime.pre_call_tools)
        if tools:
            await run_pre_call_tools(
                self.webhooks, tools, self.config, self.inputs.variables, self.recorder.event
            )

    def _build(self) -> CallPipeline:
        inputs = self.inputs
        self._machines = MachinePolicy(self) if needs_detector(self) else None
        builtins = BuiltinTools(self)
        functions: list[CallFunction] = builtins.functions() + [
            self.webhooks.function(tool) for tool in self._webhook_tools(inputs.runtime.tools)
        ]
        system_prompt = render(self.config.system_prompt, inputs.variables)
        flow = inputs.runtime.flow
        if flow is not None:
            self._flow = CallFlow(
                flow,
                system_prompt=system_prompt,
                builtins=builtins,
                webhooks=self.webhooks,
                tools=inputs.webhook_tools,
                global_functions=functions,
                variables=inputs.variables,
                event=self.recorder.event,
            )
        built = build_call_pipeline(
            websocket=inputs.websocket,
            serializer=inputs.carrier.serializer(inputs.start),
            flush_after_turns=inputs.carrier.buffers_audio,
            sample_rate=inputs.start.sample_rate,
            config=self.config,
            system_prompt=system_prompt,
            # A flow sets each node's functions itself.
            tools=[] if self._flow is not None else [f.schema() for f in functions],
            credentials=inputs.credentials,
            local=inputs.local,
            http=inputs.http,
            on_switch=self._provider_switched,
            on_event=self.recorder.event,
            on_language=self._language_switched,
            machine_detector=self._machines.detector if self._machines else None,
        )
        self._wire(built)
        return built

    def _wire(self, built: CallPipeline) -> None:
        built.transport.add_event_handler("on_client_connected", self._connected)
        built.transport.add_event_handler("on_client_disconnected", self._disconnected)
        user, assistant = built.aggregators.user(), built.aggregators.assistant()
        user.add_event_handler("on_user_turn_started", self._user_started)
        user.add_event_handler("on_user_turn_stopped", self._user_stopped)
        user.add_event_handler("on_user_turn_idle", self._user_idle)
        assistant.add_event_handler("on_assistant_turn_stopped", self._agent_stopped)
        built.recorder.add_event_handler("on_audio_data", self._audio)

    async def _connected(self, _transport: Any, _client: Any) -> None:
        assert self._built is not None
        await self._open_recording(self._built)
        # The opening runs beside the transport's event handler, not inside it: a flow's
        # first step may wait on speech the caller cuts short, and the pipeline waits for
        # its handlers before it can close. The session's timers are cancelled at its end.
        self._timers.append(asyncio.create_task(self._greet(self._built), name="call-opening"))

    async def _disconnected(self, _transport: Any, _client: Any) -> None:
        if not self._ending:
            self.end_reason = "caller_hung_up"
        if self._built is not None:
            await self._built.worker.cancel()

    async def _user_started(self, _aggregator: Any, *_args: Any) -> None:
        self._idle_prompts = 0
        self._user_started_at = utcnow()

    async def _user_stopped(
        self, _aggregator: Any, _strategy: Any, message: UserTurnStoppedMessage
    ) -> None:
        if message.content:
            started = self._user_started_at or utcnow()
            await self.recorder.turn("user", message.content, started_at=started)
            await self.recorder.event("user_spoke", text=message.content)

    async def _user_idle(self, _aggregator: Any) -> None:
        await self._on_idle()

    async def _agent_stopped(self, _aggregator: Any, message: AssistantTurnStoppedMessage) -> None:
        if message.content:
            started = _parse_time(message.timestamp)
            await self.recorder.turn(
                "agent", message.content, started_at=started, interrupted=message.interrupted
            )
            await self.recorder.event(
                "agent_spoke", text=message.content, interrupted=message.interrupted
            )

    async def _audio(self, _processor: Any, audio: bytes, _rate: int, _channels: int) -> None:
        if self._wav is not None:
            self._wav.append(audio)

    async def _open_recording(self, built: CallPipeline) -> None:
        if not self.config.recording_enabled:
            return
        call = self.inputs.call
        path = recording_path(self.inputs.recordings_dir, call.id, call.created_at)
        self._wav = StereoWavWriter(path, self.inputs.start.sample_rate)
        await built.recorder.start_recording()  # type: ignore[no-untyped-call]

    async def _greet(self, built: CallPipeline) -> None:
        call = self.inputs.call
        if call.direction is CallDirection.OUTBOUND:
            greeting = await self._outbound_opening()
            if greeting is None:
                return
        else:
            hours = self.config.business_hours
            if hours is not None and not hours.is_open(datetime.now(UTC)):
                await self.recorder.event("out_of_hours")
                await self.say_and_end(hours.out_of_hours_message, "out_of_hours")
                return
            greeting = render(self.config.greeting, self.inputs.variables).strip()
        if greeting:
            await built.worker.queue_frame(TTSSpeakFrame(greeting, append_to_context=True))
        if self._flow is not None:
            await self._flow.start(
                llm=built.llm,
                aggregators=built.aggregators,
                worker=built.worker,
                transport=built.transport,
            )

    async def _outbound_opening(self) -> str | None:
        """What the agent says first on a call it placed: the voicemail message (then it hangs
        up) when a machine answered and the call asked to leave one, nothing when the callee
        is to speak first, else its outbound greeting. None: the call is being ended."""
        call, outbound = self.inputs.call, self.config.outbound
        dial = call.dial or {}
        if is_machine(call.answered_by) and dial.get("machine_detection") == "leave_message":
            await self.leave_voicemail(str(dial.get("voicemail_message", "")))
            return None
        if outbound.first_speaker == "callee":
            await self.recorder.event("waiting_for_callee")
            return ""
        return render(outbound.greeting or self.config.greeting, self.inputs.variables).strip()

    async def leave_voicemail(self, message: str) -> None:
        """Say the voicemail message to the machine and hang up."""
        text = render(message, self.inputs.variables).strip()
        await self.recorder.event("voicemail_left", message=text)
        await self.say_and_end(text, "voicemail_left")

    async def _say_while_waiting(self, text: str) -> None:
        """A line said while a tool works (in the context too: the LLM should know it was said)."""
        if self._built is not None and not self._ending:
            await self._built.worker.queue_frame(TTSSpeakFrame(text, append_to_context=True))

    def _start_timers(self) -> None:
        self._timers.append(asyncio.create_task(self._max_duration(), name="max-call-duration"))

    # -- behaviour -----------------------------------------------------------------

    async def _max_duration(self) -> None:
        await asyncio.sleep(self.config.pipeline.max_call_seconds)
        await self.recorder.event("max_duration_reached")
        await self.say_and_end(MAX_DURATION_MESSAGE, "max_duration")

    async def _on_idle(self) -> None:
        pipeline = self.config.pipeline
        self._idle_prompts += 1
        if self._idle_prompts * pipeline.idle_reprompt_seconds >= pipeline.idle_hangup_seconds:
            await self.recorder.event("idle_hang_up", prompts=self._idle_prompts - 1)
            await self.say_and_end(IDLE_GOODBYE, "idle_timeout")
            return
        await self.recorder.event("idle_reprompt")
        if self._built is not None:
            await self._built.worker.queue_frame(TTSSpeakFrame(pipeline.idle_reprompt_message))

    async def say_and_end(self, text: str | None, reason: str) -> None:
        """Say ``text`` (if any), let it finish playing, then end the call."""
        if self._ending or self._built is None:
            return
        self._ending = True
        self.end_reason = reason
        frames: list[Any] = [TTSSpeakFrame(text)] if text else []
        await self._built.worker.queue_frames([*frames, EndFrame()])

    async def end_after_current_speech(self, reason: str) -> None:
        """End once what is queued has been said (the goodbye the LLM is speaking)."""
        await self.say_and_end(None, reason)

    async def _language_switched(self, previous: str, current: str) -> None:
        await self.recorder.event("language_switched", previous=previous, current=current)

    async def _provider_switched(self, kind: ProviderKind, previous: str, current: str) -> None:
        await self.recorder.event(
            "provider_switched", kind=kind.value, previous=previous, current=current
        )
        if kind is ProviderKind.LLM and self._built is not None:
            # The failed request took the caller's turn with it: ask the backup to answer it.
            await self._built.worker.queue_frame(LLMRunFrame())


def _tool_client(policy: ToolPolicy | None) -> SafeHttpClient:
    if policy is None:
        return SafeHttpClient()
    return SafeHttpClient(
        allowed_private_hosts=policy.allowed_private_hosts, signing_secret=policy.signing_secret
    )


def _parse_time(value: str | None) -> datetime:
    if value:
        with contextlib.suppress(ValueError):
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return utcnow()
