"""Agent language tags to Pipecat's ``Language`` values."""

from __future__ import annotations

from pipecat.transcriptions.language import Language


def pipecat_language(tag: str | None) -> Language | None:
    """``en``/``en-US``/``hi-IN`` as Pipecat's enum; None when Pipecat has no such code."""
    if not tag:
        return None
    try:
        return Language(tag)
    except ValueError:
        base = tag.split("-")[0]
        try:
            return Language(base)
        except ValueError:
            return None
