"""A scripted classifier for Pipecat's ``VoicemailDetector``: voicemail phrases, no LLM.

Pipecat's detector decides from transcripts, asking a classifier whether they
sound like a person or a voicemail greeting. The embedded LLM cannot answer
that (``bench/machine_detection.py --smollm2``: asked as Pipecat's
``LLMClassifier`` asks, SmolLM2-135M gave no valid answer for any of 41
greetings, ~9 s each; constrained to JSON by a grammar it said "voicemail"
to 40 of them), so offline the detector is given this:
greetings say the same few things ("you've reached", "leave a message",
"after the tone"), and a transcript that says one of them is a voicemail.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pipecat.classifiers.base_classifier import (
    BaseClassifier,
    ChoiceQuestion,
    ChoiceResult,
    ClassifierError,
    ClassifierImage,
    ClassifierQuestion,
    ClassifierResult,
)
from pipecat.metrics.metrics import LLMTokenUsage

VOICEMAIL = "voicemail"
VOICEMAIL_PHRASES = (
    "you've reached", "you have reached", "leave a message", "leave me a message",
    "leave us a message", "leave your name", "leave your message", "after the tone",
    "after the beep", "at the tone", "record your message", "not available",
    "can't come to the phone", "can't get to the phone", "unable to take your call",
    "mailbox", "voicemail", "voice mail", "not in service", "has been forwarded",
    "currently closed", "our hours", "we'll call you back", "i'll call you back",
    "get back to you", "not home", "away from my desk", "press pound", "try again later",
    "please check the number",
)  # fmt: skip
CONFIDENT, UNSURE = 0.9, 0.7


def says_voicemail(transcript: str) -> bool:
    """Whether a transcript contains a phrase voicemail greetings use."""
    text = re.sub(r"\s+", " ", transcript.lower().replace("\u2019", "'"))
    return any(phrase in text for phrase in VOICEMAIL_PHRASES)


class VoicemailPhraseClassifier(BaseClassifier):
    """Answers choice questions that offer ``voicemail``: it if a voicemail phrase was
    said, else the other option (a person)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]

    async def _ask(
        self,
        state: str | dict[str, Any] | list[Any],
        questions: Mapping[str, ClassifierQuestion],
        images: Sequence[ClassifierImage] = (),
    ) -> tuple[dict[str, ClassifierResult], LLMTokenUsage | None]:
        transcript = state if isinstance(state, str) else str(state)
        voicemail = says_voicemail(transcript)
        results: dict[str, ClassifierResult] = {}
        for name, question in questions.items():
            options = list(question.options) if isinstance(question, ChoiceQuestion) else []
            others = [option for option in options if option != VOICEMAIL]
            if VOICEMAIL not in options or len(others) != 1:
                raise ClassifierError(f"{self} only tells a voicemail from one other option")
            # Without a phrase the transcript may still be a greeting's first words.
            p_voicemail = CONFIDENT if voicemail else 1 - UNSURE
            results[name] = ChoiceResult(
                choice=VOICEMAIL if voicemail else others[0],
                probabilities={VOICEMAIL: p_voicemail, others[0]: 1 - p_voicemail},
                confidence=max(p_voicemail, 1 - p_voicemail),
            )
        return results, None
