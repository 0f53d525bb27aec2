"""eSpeak NG through ctypes: the light embedded text-to-speech.

``espeakng-loader`` bundles ``libespeak-ng.so`` and its data; we drive the
library's C API directly. It is formant synthesis: robotic, many languages,
and nearly free of CPU (a sentence takes milliseconds), so each text is
synthesized whole, in a worker thread, at eSpeak's native 22.05 kHz, then
resampled to the pipeline's rate by the ``TTSService`` base.

libespeak-ng keeps global state (one voice, one callback) and is not
thread-safe, so the process has one ``ESpeakEngine`` and one synthesis runs at
a time, under its lock.
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import espeakng_loader  # type: ignore[import-untyped]
from pipecat.frames.frames import ErrorFrame, Frame, TTSStoppedFrame
from pipecat.services.settings import TTSSettings as PipecatTTSSettings
from pipecat.services.tts_service import TTSService
from pipecat.utils.tracing.service_decorators import traced_tts

from switchboard.agents.schema import TTSSettings
from switchboard.errors import ConfigurationError
from switchboard.providers.base import BuildContext, TTSProvider

# From espeak-ng's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_PARAM_RATE = 1
_EE_OK = 0
_BUFFER_MS = 200
DEFAULT_WORDS_PER_MINUTE = 175  # eSpeak's own default rate

# int callback(short *wav, int numsamples, espeak_EVENT *events); return 0 to go on.
_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _Voice(ctypes.Structure):
    """``espeak_VOICE``. ``languages`` is a list: (priority byte, tag, NUL)..., then a 0 byte."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


class ESpeakError(RuntimeError):
    """libespeak-ng refused a call (an unknown voice, an engine that cannot start)."""


class ESpeakEngine:
    """libespeak-ng, loaded on first use; one synthesis at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lib: ctypes.CDLL | None = None
        self._sample_rate = 0
        self._voice: str | None = None
        self._chunks: list[bytes] = []
        self._callback = _SynthCallback(self._collect)  # kept alive as long as the engine

    def _collect(self, wav: Any, samples: int, _events: Any) -> int:
        if samples > 0:
            self._chunks.append(ctypes.string_at(wav, samples * 2))
        return 0

    def _load(self) -> ctypes.CDLL:
        # Called with the lock held.
        if self._lib is not None:
            return self._lib
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetVoiceByProperties.argtypes = [ctypes.POINTER(_Voice)]
        lib.espeak_SetVoiceByProperties.restype = ctypes.c_int
        lib.espeak_GetCurrentVoice.argtypes = []
        lib.espeak_GetCurrentVoice.restype = ctypes.POINTER(_Voice)
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,  # text
            ctypes.c_size_t,  # size in bytes, with the terminating NUL
            ctypes.c_uint,  # position
            ctypes.c_int,  # position type
            ctypes.c_uint,  # end position (0: none)
            ctypes.c_uint,  # flags
            ctypes.c_void_p,  # unique identifier (unused)
            ctypes.c_void_p,  # user data (unused)
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        data_path = espeakng_loader.get_data_path().encode()
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, data_path, _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise ESpeakError(f"libespeak-ng did not start (data at {data_path.decode()})")
        lib.espeak_SetSynthCallback(self._callback)
        self._sample_rate = rate
        self._lib = lib
        return lib

    def _select_voice(self, lib: ctypes.CDLL, voice: str) -> None:
        # A voice's name ("en-us", "es") first, else a voice that lists it as a language
        # ("en-gb" is the voice "en").
        if voice == self._voice:
            return
        if lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK and not _select_language(lib, voice):
            self._voice = None  # eSpeak may have switched to some other voice
            raise ESpeakError(f"eSpeak NG has no voice {voice!r}")
        self._voice = voice

    def check_voice(self, voice: str) -> None:
        """Raise ``ESpeakError`` unless eSpeak NG can speak with ``voice``."""
        with self._lock:
            self._select_voice(self._load(), voice)

    def synthesize(
        self, text: str, voice: str, words_per_minute: int = DEFAULT_WORDS_PER_MINUTE
    ) -> tuple[bytes, int]:
        """Speak ``text``: mono 16-bit PCM and its sample rate. Blocks; thread-safe."""
        with self._lock:
            lib = self._load()
            self._select_voice(lib, voice)
            lib.espeak_SetParameter(_PARAM_RATE, words_per_minute, 0)
            encoded = text.encode("utf-8")
            self._chunks = []
            try:
                status = lib.espeak_Synth(
                    encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
                )
                if status != _EE_OK:
                    raise ESpeakError(f"espeak_Synth failed with status {status}")
                return b"".join(self._chunks), self._sample_rate
            finally:
                self._chunks = []


def _select_language(lib: ctypes.CDLL, language: str) -> bool:
    """Select the voice for ``language``; eSpeak picks its nearest for any tag, so check."""
    tag = ctypes.create_string_buffer(language.encode())
    wanted = _Voice(languages=ctypes.cast(tag, ctypes.c_void_p))
    if lib.espeak_SetVoiceByProperties(ctypes.byref(wanted)) != _EE_OK:
        return False
    return language.lower() in _languages(lib.espeak_GetCurrentVoice().contents)


def _languages(voice: _Voice) -> list[str]:
    tags: list[str] = []
    address = voice.languages
    while address and ctypes.string_at(address, 1) != b"\0":  # a priority byte, then a tag
        tag = ctypes.string_at(address + 1)
        tags.append(tag.decode().lower())
        address += len(tag) + 2
    return tags


engine = ESpeakEngine()
"""The process's one eSpeak NG engine."""


class ESpeakTTSService(TTSService):
    """Text to speech with eSpeak NG.

    For each text: a ``TTSStartedFrame`` (pushed by the base), ``TTSAudioRawFrame``
    chunks at the pipeline's sample rate, then a ``TTSStoppedFrame``.
    """

    Settings = PipecatTTSSettings

    def __init__(
        self,
        *,
        voice: str = "en-us",
        speed: float = 1.0,
        settings: PipecatTTSSettings | None = None,
        **kwargs: Any,
    ) -> None:
        """Initialize the service; the library loads when the first text is spoken.

        Args:
            voice: An eSpeak NG voice name (``en-us``, ``en-gb``, ``es``, ...).
            speed: 1.0 is eSpeak's default 175 words per minute.
            settings: Pipecat settings; ``voice`` here wins over the argument.
            **kwargs: Passed to ``TTSService`` (e.g. ``sample_rate``).
        """
        default_settings = self.Settings(model=None, voice=voice, language=None)
        if settings is not None:
            default_settings.apply_update(settings)
        super().__init__(
            push_start_frame=True, push_stop_frames=True, settings=default_settings, **kwargs
        )
        self._words_per_minute = round(DEFAULT_WORDS_PER_MINUTE * speed)

    def can_generate_metrics(self) -> bool:
        """Processing and TTFB metrics are reported."""
        return True

    @traced_tts
    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame, None]:
        """Synthesize ``text`` in a worker thread and yield it as audio frames.

        Yields:
            ``TTSAudioRawFrame``s at the pipeline's sample rate, or an ``ErrorFrame``
            and a ``TTSStoppedFrame``.
        """
        voice = self._settings.voice if isinstance(self._settings.voice, str) else "en-us"
        try:
            await self.start_tts_usage_metrics(text)
            pcm, native_rate = await asyncio.to_thread(
                engine.synthesize, text, voice, self._words_per_minute
            )
            async for frame in self._stream_audio_frames_from_iterator(
                self._chunked(pcm, native_rate),
                in_sample_rate=native_rate,
                context_id=context_id,
            ):
                await self.stop_ttfb_metrics()
                yield frame
        except ESpeakError as exc:
            yield ErrorFrame(error=str(exc))  # Pipecat logs it
            yield TTSStoppedFrame(context_id=context_id)  # no audio is coming: close the context
        finally:
            await self.stop_ttfb_metrics()

    @staticmethod
    async def _chunked(pcm: bytes, sample_rate: int) -> AsyncIterator[bytes]:
        """The synthesized PCM in 100 ms pieces, so frames stay small."""
        size = sample_rate // 10 * 2
        for start in range(0, len(pcm), size):
            yield pcm[start : start + size]


class ESpeakTTS(TTSProvider):
    """Builds an ``ESpeakTTSService`` with one of the catalog's eSpeak NG voices."""

    def create(self, settings: TTSSettings, ctx: BuildContext) -> TTSService:
        voice = self.voice(settings) or "en-us"
        if voice not in self.spec.voices:
            raise ConfigurationError(
                f"eSpeak NG voice {voice!r} is not one of {', '.join(self.spec.voices)}",
                field="tts.voice",
            )
        return ESpeakTTSService(voice=voice, speed=settings.speed, sample_rate=ctx.sample_rate)
