"""Loading the embedded models before the first call rings.

Without it the first caller waits ~10 s in silence while the whisper model,
the Piper voice and the llama.cpp server load. ``switchboard serve`` runs this
in the background at start; calls that arrive earlier simply wait for it.
"""

from __future__ import annotations

import asyncio
import logging
import time

from switchboard.providers.local import LocalEngines
from switchboard.providers.options import WhisperOptions
from switchboard.providers.stt.whisper import bundled_model_path, shared_whisper_model
from switchboard.providers.tts.piper import bundled_voice_dir, shared_piper_voice

log = logging.getLogger(__name__)


async def warm_up(local: LocalEngines) -> None:
    """Load each model; one that fails is logged and left for the first call to retry."""
    started = time.monotonic()
    threads = WhisperOptions().cpu_threads
    try:
        await asyncio.to_thread(
            shared_whisper_model, str(bundled_model_path()), cpu_threads=threads
        )
        await asyncio.to_thread(shared_piper_voice, bundled_voice_dir() / "en_US-joe-medium.onnx")
        await local.start()
    except Exception:
        log.exception("could not load the embedded models at start; calls will retry")
        return
    log.info("embedded models ready in %.1f s", time.monotonic() - started)
