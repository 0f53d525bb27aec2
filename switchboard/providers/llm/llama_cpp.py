"""The embedded LLM: SmolLM2 served by llama.cpp, consumed through Pipecat's OpenAI service.

The model runs in a child process (``llama_server``) behind an
OpenAI-compatible API, so this adapter is Pipecat's ``OpenAILLMService`` with
a ``base_url``; set ``llm.base_url`` and the same code talks to Ollama, vLLM
or any other OpenAI-compatible endpoint instead.

Tool calls (``LlamaCppOptions.tool_choice``):

- ``grammar`` (default, for the embedded server): llama-cpp-python's
  ``chatml-function-calling`` handler picks between "answer in words" and one
  of the offered tools under a grammar, then writes the arguments under a
  grammar made from the tool's JSON schema, so a call is always valid JSON
  naming an offered tool. That handler cannot stream a tool call, so a turn
  with tools is first asked without streaming; when the model chooses words
  (its constrained message step yields nothing useful) the answer is streamed
  by a second request without tools. Tool results are passed back as user
  turns, because the handler's template drops the ``tool`` role.
- ``auto``: tools and ``tool_choice`` go to the endpoint unchanged, streamed;
  for endpoints that stream tool calls themselves.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal, cast

from openai import AsyncStream
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.chat.chat_completion_chunk import (
    Choice,
    ChoiceDelta,
    ChoiceDeltaToolCall,
    ChoiceDeltaToolCallFunction,
)
from pipecat.adapters.llm.services.open_ai_adapter import OpenAILLMInvocationParams
from pipecat.frames.frames import CancelFrame, EndFrame, StartFrame
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.services.openai.base_llm import OpenAILLMSettings
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.utils.errors import ErrorCategory
from pipecat.utils.types import assert_given

from switchboard.agents.schema import LLMSettings
from switchboard.errors import ConfigurationError
from switchboard.providers.base import BuildContext, LLMProvider
from switchboard.providers.llm.llama_server import LlamaServer, LlamaServerError
from switchboard.providers.local import LocalEngines
from switchboard.providers.options import LlamaCppOptions

ToolChoiceMode = Literal["auto", "grammar"]
CHARS_PER_TOKEN = 3  # a cautious estimate for trimming; SmolLM2 averages about 4 on English


class LlamaCppLLMService(OpenAILLMService):
    """Pipecat's OpenAI LLM service for a local or self-hosted OpenAI-compatible server.

    With a ``server`` it starts the embedded model server when the pipeline
    starts (once per process; later calls find it running) and follows it if
    it restarts on another port.
    """

    supports_developer_role = False  # llama.cpp's chat templates know no "developer" role
    supports_response_schema = False

    def __init__(
        self,
        *,
        server: LlamaServer | None = None,
        base_url: str | None = None,
        tool_choice_mode: ToolChoiceMode = "grammar",
        context_tokens: int = 2048,
        **kwargs: Any,
    ) -> None:
        if server is None and base_url is None:
            raise ValueError("give the embedded server or a base_url")
        kwargs.setdefault("api_key", "local")  # the embedded server takes no key
        # The real URL of the embedded server is known once it has started.
        super().__init__(base_url=base_url or "http://127.0.0.1:9/v1", **kwargs)
        self._server = server
        self._tool_choice_mode = tool_choice_mode
        self._context_tokens = context_tokens
        self._warming: asyncio.Task[None] | None = None

    @property
    def _llm_settings(self) -> OpenAILLMSettings:
        return cast(OpenAILLMSettings, self._settings)

    async def start(self, frame: StartFrame) -> None:
        """Start the embedded server in the background: the call goes on (its greeting
        plays) while the first call of the process waits for the model; the first
        inference waits for it to be ready."""
        await super().start(frame)
        if self._server is not None and not self._server.running:
            self._warming = self.create_task(self._warm_up(), name=f"{self}::warm_up")

    async def _warm_up(self) -> None:
        try:
            await self._use_server()
        except LlamaServerError as exc:
            # Reported, not raised: the next inference tries to start it again.
            await self.push_error(
                f"local LLM: {exc.message}", exception=exc, category=ErrorCategory.SERVER
            )

    async def stop(self, frame: EndFrame) -> None:
        await self._stop_warming()
        await super().stop(frame)

    async def cancel(self, frame: CancelFrame) -> None:
        await self._stop_warming()
        await super().cancel(frame)

    async def _stop_warming(self) -> None:
        if self._warming is not None and not self._warming.done():
            await self.cancel_task(self._warming)
        self._warming = None

    async def cleanup(self) -> None:
        """Close the HTTP client too: its pooled connections would outlive the call."""
        await super().cleanup()  # type: ignore[no-untyped-call]
        await self._client.close()

    async def _use_server(self) -> None:
        if self._server is not None:
            url = await self._server.ensure_started()
            if str(self._client.base_url).rstrip("/") != url:
                self._client.base_url = url

    async def get_chat_completions(  # type: ignore[override]
        self, context: LLMContext
    ) -> AsyncIterator[ChatCompletionChunk]:
        """Stream the completion; the caller (``_process_context``) only iterates it."""
        await self._use_server()
        self._log_llm_response(context)
        invocation = await self._invocation_params(context)
        params = self.build_chat_completion_params(invocation)
        if self._tool_choice_mode == "grammar" and _needs_tool_decision(params):
            decision = {**params, "stream": False, "tool_choice": "auto"}
            decision.pop("stream_options", None)
            response: ChatCompletion = await self._client.chat.completions.create(**decision)
            if response.choices and response.choices[0].message.tool_calls:
                return _replay_tool_calls(response)
            params = {k: v for k, v in params.items() if k not in ("tools", "tool_choice")}
        stream = await self._client.chat.completions.create(**params)
        return _with_usage(stream)

    async def _invocation_params(self, context: LLMContext) -> OpenAILLMInvocationParams:
        return await self.get_llm_adapter().get_llm_invocation_params(
            context,
            system_instruction=assert_given(self._llm_settings.system_instruction),
            convert_developer_to_user=True,
        )

    def build_chat_completion_params(
        self, params_from_context: OpenAILLMInvocationParams
    ) -> dict[str, Any]:
        """The OpenAI request, with the conversation cut to fit ``context_tokens``."""
        params: dict[str, Any] = super().build_chat_completion_params(params_from_context)
        messages: list[dict[str, Any]] = [dict(m) for m in params["messages"]]
        tools = params.get("tools")
        if self._tool_choice_mode == "grammar":
            messages = _tool_results_as_user_turns(messages)
            if tools and (not messages or messages[0].get("role") != "system"):
                # The handler lists the tools inside the system message, so there must be one.
                messages.insert(0, {"role": "system", "content": ""})
        reserved = _tokens(json.dumps(tools)) if isinstance(tools, list) else 0
        max_tokens = self._llm_settings.max_tokens
        reserved += max_tokens if isinstance(max_tokens, int) else 256
        params["messages"] = fit_messages(messages, self._context_tokens - reserved)
        return params


def _needs_tool_decision(params: Mapping[str, Any]) -> bool:
    tools, choice = params.get("tools"), params.get("tool_choice")
    if not isinstance(tools, list) or not tools:
        return False
    # A named tool streams fine under its grammar; "none" means plain text.
    return not isinstance(choice, dict) and choice != "none"


def _tokens(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN + 1


def fit_messages(messages: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """The leading system messages and as many of the latest turns as fit in ``budget`` tokens.

    A small model's context window overflows in a long call; dropping the
    oldest turns keeps the call going where the server would refuse it.
    """
    head = 0
    while head < len(messages) and messages[head].get("role") == "system":
        head += 1
    system, turns = messages[:head], messages[head:]
    budget -= sum(_tokens(json.dumps(m, default=str)) for m in system)
    kept: list[dict[str, Any]] = []
    for message in reversed(turns):
        cost = _tokens(json.dumps(message, default=str))
        if cost > budget and kept:
            break
        budget -= cost
        kept.insert(0, message)
    while len(kept) > 1 and kept[0].get("role") == "tool":
        kept.pop(0)  # a result whose call was cut off
    return system + kept


def _tool_results_as_user_turns(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names: dict[str, str] = {}
    result: list[dict[str, Any]] = []
    for message in messages:
        for call in message.get("tool_calls") or []:
            names[call.get("id", "")] = call.get("function", {}).get("name", "tool")
        if message.get("role") == "tool":
            name = names.get(message.get("tool_call_id", ""), "tool")
            content = message.get("content")
            text = content if isinstance(content, str) else json.dumps(content, default=str)
            message = {"role": "user", "content": f"(result of {name}) {text}"}
        result.append(message)
    return result


async def _replay_tool_calls(response: ChatCompletion) -> AsyncIterator[ChatCompletionChunk]:
    """A non-streamed tool-call answer as the chunks ``_process_context`` reads."""
    calls = response.choices[0].message.tool_calls or []
    for index, call in enumerate(calls):
        function = getattr(call, "function", None)
        delta = ChoiceDelta(
            tool_calls=[
                ChoiceDeltaToolCall(
                    index=index,
                    id=call.id,
                    type="function",
                    function=ChoiceDeltaToolCallFunction(
                        name=function.name if function else "",
                        arguments=function.arguments if function else "{}",
                    ),
                )
            ]
        )
        yield _chunk(response, choices=[Choice(index=0, delta=delta)])
    if response.usage is not None:
        yield _chunk(response, choices=[], usage=response.usage)


def _chunk(
    response: ChatCompletion, *, choices: list[Choice], usage: CompletionUsage | None = None
) -> ChatCompletionChunk:
    return ChatCompletionChunk(
        id=response.id,
        object="chat.completion.chunk",
        created=response.created,
        model=response.model,
        choices=choices,
        usage=usage,
    )


async def _with_usage(
    stream: AsyncStream[ChatCompletionChunk],
) -> AsyncIterator[ChatCompletionChunk]:
    """The stream, plus a usage chunk when the server sends none (llama-cpp-python doesn't).

    Each streamed chunk from llama.cpp carries one sampled token, so counting
    them gives the completion tokens; the prompt is not counted (reported as 0).
    """
    tokens = 0
    last: ChatCompletionChunk | None = None
    reported = False
    try:
        async for chunk in stream:
            reported = reported or chunk.usage is not None
            if chunk.choices and (
                chunk.choices[0].delta.content or chunk.choices[0].delta.tool_calls
            ):
                tokens += 1
            last = chunk
            yield chunk
    finally:
        await stream.close()
    if not reported and last is not None and tokens:
        usage = CompletionUsage(prompt_tokens=0, completion_tokens=tokens, total_tokens=tokens)
        yield ChatCompletionChunk(
            id=last.id, object="chat.completion.chunk", created=last.created,
            model=last.model, choices=[], usage=usage,
        )  # fmt: skip


class LlamaCppLLM(LLMProvider):
    """SmolLM2 on the process's llama.cpp server, or the model behind ``llm.base_url``."""

    def create(self, settings: LLMSettings, ctx: BuildContext) -> LlamaCppLLMService:
        options = LlamaCppOptions.model_validate(settings.options)
        server: LlamaServer | None = None
        if settings.base_url is None:
            if not isinstance(ctx.local, LocalEngines):
                raise ConfigurationError(
                    "the embedded LLM needs the process's local engines (BuildContext.local)",
                    field="llm.provider",
                )
            server = ctx.local.llama
        return LlamaCppLLMService(
            server=server,
            base_url=settings.base_url,
            api_key=ctx.credentials.get("api_key") or "local",
            tool_choice_mode=options.tool_choice,
            context_tokens=options.context_tokens,
            settings=OpenAILLMService.Settings(
                model=self.model(settings) or "local",
                system_instruction=ctx.system_instruction,
                temperature=settings.temperature,
                max_tokens=settings.max_tokens,
            ),
        )
