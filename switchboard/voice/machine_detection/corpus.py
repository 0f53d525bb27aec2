"""A labelled set of answering-machine and human greetings, synthesized offline.

Each greeting is a script (speech, pauses, beeps, line noise) rendered as a
callee would sound: the words by the embedded Piper voice (``CallerVoice``),
the whole through the 8 kHz µ-law phone line. Its labels come from the script
itself: when speech starts and, for a machine, when its greeting ends (the
end of the beep, else of the last word), where a message left would be
recorded. Piper renders the same text the same way and the line noise is
seeded by the greeting's name, so a greeting sounds the same every time.

Renderings are cached as WAV files named by a hash of their script, so a
benchmark or a test session synthesizes each greeting once per machine.
The set includes hard cases on purpose (a long human greeting, a machine that
opens with "Hello?"): the benchmark reports what the detector gets wrong.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from switchboard.caller.caller_voice import (
    SILENCE_LEVEL,
    CallerLine,
    CallerVoice,
    read_wav,
    write_wav,
)
from switchboard.providers.phone_line import (
    PHONE_SAMPLE_RATE,
    decode_phone_line,
    encode_phone_line,
)

Label = Literal["human", "machine"]
RENDERING_VERSION = 1  # bump when rendering changes, so stale caches are not reused
BEEP_LEVEL = 0.3  # of full scale (about -10 dBFS), as loud as the voice's peaks
FADE_SECONDS = 0.005  # a beep starts and stops without a click


@dataclass(frozen=True)
class Say:
    """Words, spoken by the Piper voice."""

    text: str


@dataclass(frozen=True)
class Pause:
    """Silence (or just the line's noise)."""

    seconds: float


@dataclass(frozen=True)
class Beep:
    """A machine's record tone."""

    hz: float = 1000.0
    seconds: float = 0.6


Part = Say | Pause | Beep


@dataclass(frozen=True)
class Greeting:
    """What the callee's side plays from the moment the call is answered."""

    name: str
    label: Label
    parts: tuple[Part, ...]
    noise_db: float | None = None  # steady line noise, dBFS; None: a clean digital line
    gain_db: float = 0.0  # a quiet or loud speaker

    @property
    def key(self) -> str:
        """A hash of everything that shapes the audio, for the cache."""
        script = json.dumps([RENDERING_VERSION, repr(self)], sort_keys=True)
        return hashlib.sha256(script.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RenderedGreeting:
    """A greeting as the detector hears it: 8 kHz 16-bit PCM and its labels (seconds)."""

    greeting: Greeting
    pcm: bytes
    speech_start: float | None
    greeting_end: float | None  # machines only: where a message would be recorded

    @property
    def seconds(self) -> float:
        return len(self.pcm) / (2 * PHONE_SAMPLE_RATE)


def _human(
    name: str, *parts: Part, noise_db: float | None = None, gain_db: float = 0.0
) -> Greeting:
    return Greeting(name, "human", parts, noise_db, gain_db)


def _machine(
    name: str, *parts: Part, noise_db: float | None = None, gain_db: float = 0.0
) -> Greeting:
    return Greeting(name, "machine", parts, noise_db, gain_db)


MACHINE_GREETINGS: tuple[Greeting, ...] = (
    _machine("garcia_family", Pause(0.4), Say("Hi, you've reached the Garcia family."), Pause(0.3),
             Say("We can't come to the phone right now."), Pause(0.35),
             Say("Please leave a message after the tone."), Pause(0.5), Beep(1000, 0.6), Pause(4)),
    _machine("carrier_unavailable", Pause(1.0),
             Say("The person you are trying to reach is not available."), Pause(0.4),
             Say("At the tone, please record your message."), Pause(0.3),
             Say("When you have finished recording, you may hang up."), Pause(0.6),
             Beep(1000, 0.8), Pause(4)),
    _machine("mailbox_number", Pause(0.6), Say("You have reached the voice mailbox of"),
             Pause(0.2), Say("five five five, one two three, four five six seven."), Pause(0.4),
             Say("Please leave a message."), Pause(0.5), Beep(850, 0.5), Pause(4)),
    _machine("dana_short", Pause(0.5), Say("Hi, it's Dana. Leave me a message."), Pause(0.4),
             Beep(1000, 0.5), Pause(4)),
    _machine("dental_closed", Pause(0.3), Say("Thank you for calling Brightside Dental."),
             Pause(0.4), Say("Our office is currently closed."), Pause(0.3),
             Say("Our hours are Monday through Friday, eight to five."), Pause(5)),
    _machine("mike_no_beep", Pause(2.0), Say("Hey, this is Mike."), Pause(0.4),
             Say("I can't get to the phone right now, so leave your name and number,"),
             Say("and I'll call you back."), Pause(5)),
    _machine("subscriber_unavailable", Pause(0.8),
             Say("The subscriber you have called is not available."), Pause(0.3),
             Say("Please leave a message after the tone."), Pause(0.3), Beep(1400, 0.4),
             Pause(4)),
    _machine("tom_and_lisa", Pause(2.5), Say("Hello, you've reached Tom and Lisa."), Pause(0.3),
             Say("We're not home right now."), Pause(0.3),
             Say("Leave a message and we'll get back to you."), Pause(0.6), Beep(1000, 0.7),
             Pause(4)),
    _machine("acme_sales", Pause(0.5),
             Say("You've reached the sales department at Acme Corporation."), Pause(0.4),
             Say("All of our representatives are busy."), Pause(0.3),
             Say("Please leave your name, number and a brief message."), Pause(0.7),
             Beep(440, 0.9), Pause(4)),
    _machine("mailbox_full", Pause(0.7),
             Say("The mailbox is full and cannot accept any messages at this time."),
             Pause(0.3), Say("Goodbye."), Pause(5)),
    # A carrier intercept opens with the three special information tones.
    _machine("not_in_service", Pause(0.4), Beep(950, 0.33), Beep(1400, 0.33), Beep(1800, 0.33),
             Pause(0.1),
             Say("The number you have dialed is not in service."), Pause(0.4),
             Say("Please check the number and try again."), Pause(5)),
    _machine("hello_trick", Pause(0.5), Say("Hello?"), Pause(1.2),
             Say("Ha, got you. This is Kevin, leave a message."), Pause(0.4), Beep(1000, 0.6),
             Pause(4)),
    _machine("rachel_pauses", Pause(0.5), Say("Hi."), Pause(0.6), Say("This is Rachel."),
             Pause(0.6), Say("Please leave a message."), Pause(0.5), Beep(1000, 0.5), Pause(4)),
    _machine("priya_noisy", Say("Hi, you've reached Priya."), Pause(0.3),
             Say("I'm away from my desk."), Pause(0.3),
             Say("Please leave a message after the beep."), Pause(0.4), Beep(1000, 0.6),
             Pause(4), noise_db=-45),
    _machine("forwarded_noisy", Pause(1.2),
             Say("Your call has been forwarded to an automated voice messaging system."),
             Pause(0.5), Say("Seven three two, is not available."), Pause(0.6),
             Beep(1000, 0.8), Pause(4), noise_db=-50),
    _machine("doctor_patel", Pause(0.6),
             Say("You have reached the after hours line for Doctor Patel's office."),
             Pause(0.4), Say("If this is an emergency, please hang up and dial nine one one."),
             Pause(0.4), Say("Otherwise, leave a message after the tone."), Pause(0.5),
             Beep(1000, 1.0), Pause(4)),
    _machine("leave_a_message", Pause(0.5), Say("Leave a message."), Pause(0.3),
             Beep(1000, 0.5), Pause(4)),
    _machine("jen_no_beep", Pause(1.5), Say("Hi, this is Jen."), Pause(0.5),
             Say("Sorry I missed you. Text me or leave a message."), Pause(5)),
    _machine("record_after_tone", Pause(0.4),
             Say("Please record your message after the tone."), Pause(0.3),
             Say("When you are finished, hang up, or press pound for more options."),
             Pause(0.5), Beep(2000, 0.5), Pause(4), noise_db=-55),
    _machine("quiet_greeting", Pause(0.6), Say("Hi, you've reached Carlos and Ana."),
             Pause(0.4), Say("Leave us a message and we'll call you back."), Pause(0.5),
             Beep(1000, 0.6), Pause(4), gain_db=-15),
)  # fmt: skip

HUMAN_GREETINGS: tuple[Greeting, ...] = (
    _human("hello", Pause(0.5), Say("Hello?"), Pause(4)),
    _human("hello_hello", Pause(0.6), Say("Hello?"), Pause(1.5), Say("Hello?"), Pause(3)),
    _human("sam_speaking", Pause(0.4), Say("Hello, this is Sam speaking."), Pause(3)),
    _human("yeah", Pause(0.8), Say("Yeah?"), Pause(4)),
    _human("whos_this", Pause(0.3), Say("Hi, who's this?"), Pause(3)),
    _human("late_hello", Pause(2.0), Say("Hello?"), Pause(3)),
    _human("hi_anyone", Pause(0.5), Say("Hi."), Pause(1.2), Say("Hello? Anyone there?"),
           Pause(3)),
    _human("jordan_speaking", Pause(0.6), Say("Jordan speaking."), Pause(3)),
    _human("how_can_i_help", Pause(0.5), Say("Good morning, how can I help you?"), Pause(3)),
    _human("johnson_residence", Pause(0.5),
           Say("Good afternoon, Johnson residence, Mary speaking."), Pause(3)),
    _human("hello_noisy", Pause(0.7), Say("Hello?"), Pause(4), noise_db=-45),
    _human("chris_noisy", Pause(0.5), Say("Hey, it's Chris."), Pause(3), noise_db=-50),
    _human("who_is_calling", Pause(0.5), Say("Hello?"), Pause(1.0),
           Say("Who is calling, please?"), Pause(3)),
    _human("yes", Pause(0.9), Say("Yes?"), Pause(4)),
    _human("this_is_alex", Pause(0.4), Say("This is Alex."), Pause(3)),
    _human("hello_whos_calling", Pause(0.5), Say("Hello."), Pause(0.5), Say("Who's calling?"),
           Pause(3)),
    _human("call_back_long", Pause(0.4),
           Say("Hello, thanks for calling back, I was just about to call you."), Pause(3)),
    _human("hey", Pause(0.6), Say("Hey."), Pause(4)),
    _human("uh_hello", Pause(1.0), Say("Uh, hello?"), Pause(3)),
    _human("very_late_hello", Pause(3.0), Say("Hello?"), Pause(3)),
    _human("quiet_hello", Pause(0.6), Say("Hello?"), Pause(4), gain_db=-15),
)  # fmt: skip

GREETINGS: tuple[Greeting, ...] = MACHINE_GREETINGS + HUMAN_GREETINGS
BY_NAME: dict[str, Greeting] = {greeting.name: greeting for greeting in GREETINGS}


# ---- rendering -------------------------------------------------------------------------


def _seconds(samples: int) -> float:
    return samples / PHONE_SAMPLE_RATE


def _beep(beep: Beep) -> npt.NDArray[np.float64]:
    t = np.arange(round(beep.seconds * PHONE_SAMPLE_RATE)) / PHONE_SAMPLE_RATE
    tone = BEEP_LEVEL * 32767 * np.sin(2 * np.pi * beep.hz * t)
    fade = min(tone.size // 2, round(FADE_SECONDS * PHONE_SAMPLE_RATE))
    ramp = np.linspace(0.0, 1.0, fade)
    tone[:fade] *= ramp
    tone[tone.size - fade :] *= ramp[::-1]
    return tone


async def _speech(voice: CallerVoice, text: str) -> npt.NDArray[np.float64]:
    """The words at 8 kHz, from their first sound (Piper leaves a little silence ahead)."""
    pcm = np.frombuffer(await decode_phone_line(await voice.render(CallerLine(text=text))), "<i2")
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > SILENCE_LEVEL)
    return pcm[int(loud[0]) if loud.size else 0 :].astype(np.float64)


async def render(greeting: Greeting, voice: CallerVoice) -> RenderedGreeting:
    """Synthesize a greeting as heard at our end of the phone line, with its labels."""
    pieces: list[npt.NDArray[np.float64]] = []
    at = 0  # samples so far
    speech_start: int | None = None
    last_speech_end = beep_end = None
    for part in greeting.parts:
        if isinstance(part, Pause):
            piece = np.zeros(round(part.seconds * PHONE_SAMPLE_RATE))
        elif isinstance(part, Beep):
            piece = _beep(part)
            beep_end = at + piece.size
        else:
            piece = await _speech(voice, part.text) * 10 ** (greeting.gain_db / 20)
            speech_start = at if speech_start is None else speech_start
            last_speech_end = at + piece.size
        pieces.append(piece)
        at += piece.size
    audio = np.concatenate(pieces)
    if greeting.noise_db is not None:
        rng = np.random.default_rng(zlib.crc32(greeting.name.encode()))
        audio += rng.normal(0.0, 32768 * 10 ** (greeting.noise_db / 20), audio.size)
    pcm = np.clip(np.round(audio), -32768, 32767).astype("<i2").tobytes()
    line = await decode_phone_line(await encode_phone_line(pcm, PHONE_SAMPLE_RATE))
    end: int | None = None
    if greeting.label == "machine":
        # A beep ends the greeting only if no words follow it (a carrier's intercept tone).
        after_words = beep_end is not None and (last_speech_end or 0) < beep_end
        end = beep_end if after_words else last_speech_end
    return RenderedGreeting(
        greeting,
        line,
        None if speech_start is None else _seconds(speech_start),
        None if end is None else _seconds(end),
    )


def _cache_paths(greeting: Greeting, cache_dir: Path) -> tuple[Path, Path]:
    stem = cache_dir / f"{greeting.name}-{greeting.key}"
    return stem.with_suffix(".wav"), stem.with_suffix(".json")


def _read_cached(greeting: Greeting, cache_dir: Path) -> RenderedGreeting | None:
    wav, labels = _cache_paths(greeting, cache_dir)
    if not (wav.exists() and labels.exists()):
        return None
    marks = json.loads(labels.read_text())
    return RenderedGreeting(
        greeting, read_wav(wav).pcm, marks["speech_start"], marks["greeting_end"]
    )


def _write_cached(rendered: RenderedGreeting, cache_dir: Path) -> None:
    wav, labels = _cache_paths(rendered.greeting, cache_dir)
    write_wav(wav, rendered.pcm)
    marks = {"speech_start": rendered.speech_start, "greeting_end": rendered.greeting_end}
    labels.write_text(json.dumps({**marks, "greeting": asdict(rendered.greeting)}, indent=2))


async def load_or_render(
    greetings: Sequence[Greeting], cache_dir: Path, voice: CallerVoice | None = None
) -> list[RenderedGreeting]:
    """The greetings, read from ``cache_dir`` or synthesized into it."""
    voice = voice or CallerVoice()
    rendered = []
    for greeting in greetings:
        cached = await asyncio.to_thread(_read_cached, greeting, cache_dir)
        if cached is None:
            cached = await render(greeting, voice)
            await asyncio.to_thread(_write_cached, cached, cache_dir)
        rendered.append(cached)
    return rendered
