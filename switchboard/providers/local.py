"""Local engines shared by every call in one process (``BuildContext.local``).

A model loaded per call would cost seconds and hundreds of megabytes each
time; these are created once, started on first use and closed at shutdown.
"""

from __future__ import annotations

from pathlib import Path

from switchboard.providers.llm.llama_server import LlamaServer


class LocalEngines:
    """What the local adapters share: for now the llama.cpp model server.

    ``data_dir`` (the server's data directory) keeps the model server's log
    under ``logs/``; without one the log is a temporary file, still quoted when
    the server fails to start. ``llm_threads`` defaults to half the cores
    (``llama_server.default_threads`` says why).
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        llm_threads: int | None = None,
        llm_context_tokens: int = 8192,
    ) -> None:
        log_path = data_dir / "logs" / "llama-server.log" if data_dir is not None else None
        self.llama = LlamaServer(
            threads=llm_threads, context_tokens=llm_context_tokens, log_path=log_path
        )

    async def start(self) -> None:
        """Start the engines now rather than at the first call (``switchboard serve`` does)."""
        await self.llama.ensure_started()

    async def aclose(self) -> None:
        """Stop every child process; safe to call twice, or when nothing was started."""
        await self.llama.aclose()
