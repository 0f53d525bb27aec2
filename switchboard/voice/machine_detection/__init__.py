"""Answering-machine detection on our side: who answered an outbound call, and when a
machine's greeting is over.

``MachineDetector`` (a Pipecat processor) is the entry point; ``greeting`` holds
the rules, ``block_features`` the per-20 ms analysis, ``corpus`` the labelled
greetings the benchmark and tests use.
"""

from switchboard.voice.machine_detection.detector import (
    MachineDetector,
    MachineMuteStrategy,
    answered_by,
)
from switchboard.voice.machine_detection.greeting import (
    AnsweredBy,
    Decision,
    GreetingEnd,
    MachineDetectionParams,
)

__all__ = [
    "AnsweredBy",
    "Decision",
    "GreetingEnd",
    "MachineDetectionParams",
    "MachineDetector",
    "MachineMuteStrategy",
    "answered_by",
]
