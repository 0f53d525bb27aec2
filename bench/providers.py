"""How the embedded speech providers perform on this machine, measured as a call sees them.

    .venv/bin/python bench/providers.py    # prints tables, writes bench/results/providers.json

STT (faster-whisper ``tiny.en``): every utterance in ``/work/shared/audio``
(else ``tests/fixtures/audio``) goes through an 8 kHz µ-law phone line into
the service, built by its adapter, in a one-service pipeline at 8 kHz. Word
error rate over all of them; latency per utterance from the service handling the
VAD's "stopped speaking" to its transcript leaving it.

TTS (Piper ``en_US-joe-medium``, eSpeak NG ``en-us``): ten agent replies,
each in its own call at 8 kHz. Time to first audio, from the text reaching
the service to its first audio frame; real-time factor, the time to the
last audio frame over the seconds of audio made.

Times come from the pipeline clock, stamped as each frame is pushed.
Sections are plain functions returning rows (``SECTIONS``); the LLM section
is ``measure_llm`` from ``bench/llm.py`` when that file exists.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import importlib.util
import json
import math
import os
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from loguru import logger
from pipecat.frames.frames import (
    Frame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.processors.frame_processor import FrameProcessor
from rich.console import Console
from rich.table import Table

from switchboard.agents.schema import STTSettings, TTSSettings
from switchboard.providers.base import BuildContext, STTProvider, TTSProvider
from switchboard.providers.options import WhisperOptions
from switchboard.providers.phone_line import (
    PHONE_SAMPLE_RATE,
    pcm_seconds,
    read_wav,
    run_service,
    through_phone_line,
    utterance_frames,
    word_error_rate,
)
from switchboard.providers.registry import load_adapter
from switchboard.providers.spec import ProviderKind
from switchboard.providers.stt.whisper import bundled_model_path, shared_whisper_model
from switchboard.providers.tts.piper import bundled_voice_dir, shared_piper_voice

BENCH = Path(__file__).parent
RESULTS = BENCH / "results" / "providers.json"
CORPORA = (Path("/work/shared/audio"), BENCH.parent / "tests" / "fixtures" / "audio")
REPLIES = (
    "Thanks for calling Riverside Dental, how can I help you today?",
    "Sure, I can help with that.",
    "We are open from nine to five, Monday to Friday.",
    "I have a slot on Friday at ten in the morning. Does that work for you?",
    "Could you spell your last name for me, please?",
    "Your appointment is booked. You will get a text message to confirm it.",
    "One moment while I check.",
    "I'm sorry, I didn't catch that. Could you say it again?",
    "Let me transfer you to our billing team.",
    "Thank you for calling. Goodbye!",
)

Row = dict[str, Any]
Section = tuple[str, Callable[[], list[Row]]]


class PushTimes(BaseObserver):
    """When each frame entered or left one processor, in seconds of the pipeline clock."""

    def __init__(self, processor: FrameProcessor) -> None:
        super().__init__()
        self._processor = processor
        self.entered: list[tuple[float, Frame]] = []
        self.left: list[tuple[float, Frame]] = []

    async def on_push_frame(self, data: FramePushed) -> None:
        stamp = (data.timestamp / 1e9, data.frame)
        if data.destination is self._processor:
            self.entered.append(stamp)
        elif data.source is self._processor:
            self.left.append(stamp)

    def first(self, stamps: list[tuple[float, Frame]], kind: type[Frame]) -> float:
        return next(t for t, f in stamps if isinstance(f, kind))

    def last(self, stamps: list[tuple[float, Frame]], kind: type[Frame]) -> float:
        return max(t for t, f in stamps if isinstance(f, kind))


def p90(values: Sequence[float]) -> float:
    """Nearest-rank 90th percentile (as ``bench/llm.py`` computes it)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def spread(name: str, values: Sequence[float], digits: int = 3) -> Row:
    return {
        f"{name}_median": round(statistics.median(values), digits),
        f"{name}_p90": round(p90(values), digits),
    }


def timed(load: Callable[[], object]) -> float:
    started = time.perf_counter()
    load()
    return round(time.perf_counter() - started, 2)


# ---- speech to text ---------------------------------------------------------------------


def utterances() -> tuple[Path, list[tuple[str, str]]]:
    directory = next(d for d in CORPORA if (d / "utterances.tsv").is_file())
    with (directory / "utterances.tsv").open(newline="") as tsv:
        return directory, [(r["file"], r["text"]) for r in csv.DictReader(tsv, delimiter="\t")]


async def _measure_stt(cpu_threads: int) -> Row:
    directory, items = utterances()
    load_s = timed(lambda: shared_whisper_model(str(bundled_model_path()), cpu_threads=cpu_threads))
    adapter = load_adapter(ProviderKind.STT, "faster_whisper")
    assert isinstance(adapter, STTProvider)
    settings = STTSettings(options=WhisperOptions(cpu_threads=cpu_threads).model_dump())
    pairs: list[tuple[str, str]] = []
    latencies: list[float] = []
    per_audio_second: list[float] = []
    for name, reference in items:
        pcm = await through_phone_line(read_wav(directory / name), PHONE_SAMPLE_RATE)
        service = adapter.create(settings, BuildContext(sample_rate=PHONE_SAMPLE_RATE))
        times = PushTimes(service)
        frames = await run_service(
            service,
            utterance_frames(pcm, PHONE_SAMPLE_RATE),
            sample_rate=PHONE_SAMPLE_RATE,
            observers=[times],
        )
        pairs.append(
            (reference, " ".join(f.text for f in frames if isinstance(f, TranscriptionFrame)))
        )
        latency = times.first(times.left, TranscriptionFrame) - times.first(
            times.entered, VADUserStoppedSpeakingFrame
        )
        latencies.append(latency)
        per_audio_second.append(latency / pcm_seconds(pcm, PHONE_SAMPLE_RATE))
    return {
        "provider": "faster_whisper tiny.en int8",
        "line": "8 kHz µ-law",
        "cpu_threads": cpu_threads,
        "utterances": len(pairs),
        "wer_pct": round(100 * word_error_rate(pairs), 2),
        **spread("latency_s", latencies),
        **spread("latency_per_audio_s", per_audio_second),
        "load_s": load_s,
    }


def measure_stt(threads: Sequence[int] = (2,)) -> list[Row]:
    """faster-whisper through a phone line, per CTranslate2 thread count."""
    return [asyncio.run(_measure_stt(count)) for count in threads]


# ---- text to speech ---------------------------------------------------------------------


async def _measure_tts(provider: str, label: str) -> Row:
    adapter = load_adapter(ProviderKind.TTS, provider)
    assert isinstance(adapter, TTSProvider)
    first_audio: list[float] = []
    real_time_factors: list[float] = []
    audio_seconds = 0.0
    for text in REPLIES:
        service = adapter.create(
            TTSSettings(provider=provider), BuildContext(sample_rate=PHONE_SAMPLE_RATE)
        )
        times = PushTimes(service)
        frames = await run_service(
            service, [TTSSpeakFrame(text)], sample_rate=PHONE_SAMPLE_RATE, observers=[times]
        )
        sent = times.first(times.entered, TTSSpeakFrame)
        seconds = sum(
            pcm_seconds(f.audio, f.sample_rate) for f in frames if isinstance(f, TTSAudioRawFrame)
        )
        first_audio.append(times.first(times.left, TTSAudioRawFrame) - sent)
        real_time_factors.append((times.last(times.left, TTSAudioRawFrame) - sent) / seconds)
        audio_seconds += seconds
    return {
        "provider": label,
        "sample_rate": PHONE_SAMPLE_RATE,
        "replies": len(REPLIES),
        "audio_s": round(audio_seconds, 1),
        **spread("first_audio_s", first_audio),
        **spread("rtf", real_time_factors),
    }


def measure_tts() -> list[Row]:
    """Piper and eSpeak NG, one call per reply."""
    piper_load_s = timed(lambda: shared_piper_voice(bundled_voice_dir() / "en_US-joe-medium.onnx"))
    piper = asyncio.run(_measure_tts("piper", "piper en_US-joe-medium"))
    espeak = asyncio.run(_measure_tts("espeak", "espeak en-us"))
    return [{**piper, "load_s": piper_load_s}, {**espeak, "load_s": 0.0}]


# ---- the sections -----------------------------------------------------------------------


def optional_llm_section() -> list[Section]:
    """``measure_llm`` from ``bench/llm.py`` (written separately), when the file exists."""
    path = BENCH / "llm.py"
    spec = importlib.util.spec_from_file_location("bench_llm", path)
    if not path.is_file() or spec is None or spec.loader is None:
        return []
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:
        print(f"LLM section skipped: {path} cannot be imported ({exc})")
        return []
    measure_llm: Callable[[], list[Row]] = module.measure_llm
    return [("llm", measure_llm)]


SECTIONS: list[Section] = [
    ("stt", measure_stt),
    ("tts", measure_tts),
    # Add a section here: a name and a function returning rows (flat dicts).
    *optional_llm_section(),
]


def column_names(rows: Sequence[Row]) -> tuple[list[str], int]:
    """Name each row by its first values, as few as tell the rows apart; and how many."""
    for count in range(1, 4):
        names = [" ".join(str(v) for v in list(row.values())[:count]) for row in rows]
        if len(set(names)) == len(names):
            break
    return names, count


def print_table(name: str, rows: Sequence[Row]) -> None:
    """One column per row, one line per measure: fits a terminal."""
    table = Table(title=f"{name.upper()} on this machine ({os.cpu_count()} CPUs)")
    table.add_column("measure")
    names, used = column_names(rows)
    for column in names:
        table.add_column(column, justify="right")
    measures = list(dict.fromkeys(key for row in rows for key in list(row)[used:]))
    for measure in measures:
        table.add_row(measure, *(str(row.get(measure, "")) for row in rows))
    Console().print(table)


def main() -> None:
    logger.remove()  # Pipecat logs every frame link at DEBUG
    logger.add(sys.stderr, level="WARNING")
    names = [name for name, _ in SECTIONS]
    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n")[0])
    parser.add_argument("--only", nargs="+", choices=names, default=names)
    args = parser.parse_args()
    load_average = [round(load, 2) for load in os.getloadavg()]
    results: dict[str, list[Row]] = {}
    for name, measure in SECTIONS:
        if name not in args.only:
            continue
        try:
            results[name] = measure()
        except Exception as exc:  # one broken section must not lose the others' figures
            traceback.print_exc()
            results[name] = [{"section": name, "error": f"{type(exc).__name__}: {exc}"}]
        print_table(name, results[name])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    earlier = json.loads(RESULTS.read_text())["results"] if RESULTS.is_file() else {}
    report = {
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_before": load_average,  # other work on the machine skews the times
        "results": {**earlier, **results},  # sections not run this time keep their figures
    }
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
