"""How well the embedded STT hears callers: every recorded utterance through a phone line.

Each 16 kHz recording goes through 8 kHz µ-law and back, then into the
faster-whisper service, built by its adapter, at the phone pipeline's 8 kHz.
The aggregate word error rate must stay under 10 % (run with ``-s`` to see it).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from pipecat.frames.frames import TranscriptionFrame

from switchboard.agents.schema import STTSettings
from switchboard.providers.base import BuildContext, STTProvider
from switchboard.providers.phone_line import (
    PHONE_SAMPLE_RATE,
    Recording,
    decode_phone_line,
    encode_phone_line,
    normalize_words,
    read_wav,
    run_service,
    through_phone_line,
    utterance_frames,
    word_edits,
    word_error_rate,
)
from switchboard.providers.registry import load_adapter
from switchboard.providers.spec import ProviderKind

CORPORA = (
    Path("/work/shared/audio"),  # all recordings, where the shared workspace is mounted
    Path(__file__).parent.parent / "fixtures" / "audio",  # a few, always
)
MAX_WER = 0.10


@pytest.mark.parametrize(
    ("reference", "heard"),
    [
        ("My phone number is five five five, one two three.", "My phone number is 555-123."),
        ("The order number is A B C one two three.", "The order number is a BC123."),
        ("Friday at ten in the morning?", "Friday at 10 in the morning"),
        ("My email is alex at example dot com.", "My email is alex@example.com"),
        ("Um, I'm not sure, let me think.", "I'm not sure. Let me think."),
    ],
)
def test_transcripts_are_compared_as_spoken(reference: str, heard: str) -> None:
    assert normalize_words(reference) == normalize_words(heard)


def test_word_error_rate_counts_edits_over_reference_words() -> None:
    assert word_edits(["a", "b", "c"], ["a", "x", "c", "d"]) == 2  # one substitution, one insertion
    assert word_error_rate([("one two three four", "one three four"), ("yes", "yes")]) == 0.2


async def test_phone_line_is_eight_kilohertz_mu_law() -> None:
    one_second = Recording(bytes(32000), 16000)  # 16 kHz, 16-bit silence

    ulaw = await encode_phone_line(one_second.pcm, one_second.sample_rate)
    pcm = await decode_phone_line(ulaw)

    assert len(ulaw) == 8000  # one byte a sample
    assert len(pcm) == 16000  # 8000 16-bit samples


def corpus() -> Path | None:
    return next((d for d in CORPORA if (d / "utterances.tsv").is_file()), None)


async def test_faster_whisper_word_error_rate_on_a_phone_line() -> None:
    directory = corpus()
    if directory is None:
        pytest.skip(f"no utterances.tsv in any of {', '.join(map(str, CORPORA))}")
    with (directory / "utterances.tsv").open(newline="") as tsv:
        utterances = [(row["file"], row["text"]) for row in csv.DictReader(tsv, delimiter="\t")]
    adapter = load_adapter(ProviderKind.STT, "faster_whisper")
    assert isinstance(adapter, STTProvider)

    pairs: list[tuple[str, str]] = []
    for name, reference in utterances:
        pcm = await through_phone_line(read_wav(directory / name), PHONE_SAMPLE_RATE)
        service = adapter.create(STTSettings(), BuildContext(sample_rate=PHONE_SAMPLE_RATE))
        frames = await run_service(
            service, utterance_frames(pcm, PHONE_SAMPLE_RATE), sample_rate=PHONE_SAMPLE_RATE
        )
        heard = " ".join(f.text for f in frames if isinstance(f, TranscriptionFrame))
        pairs.append((reference, heard))

    wer = word_error_rate(pairs)
    print(f"\nfaster-whisper tiny.en, 8 kHz µ-law, {len(pairs)} utterances from {directory}")
    for reference, heard in pairs:
        edits = word_edits(normalize_words(reference), normalize_words(heard))
        if edits:
            print(f"  {edits} edit(s): {reference!r} -> {heard!r}")
    print(f"WER {wer:.1%} (limit {MAX_WER:.0%})")
    assert wer < MAX_WER
