"""Call recordings: a stereo WAV per call, caller on the left, agent on the right."""

from __future__ import annotations

import wave
from datetime import datetime
from pathlib import Path


def recording_path(root: Path, call_id: str, started: datetime) -> Path:
    """``recordings/YYYY/MM/{call_id}.wav`` under the data dir."""
    return root / f"{started:%Y}" / f"{started:%m}" / f"{call_id}.wav"


class StereoWavWriter:
    """Appends interleaved 16-bit stereo PCM as it arrives, so a long call never sits in memory."""

    def __init__(self, path: Path, sample_rate: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: wave.Wave_write | None = wave.open(str(path), "wb")  # noqa: SIM115
        self._file.setnchannels(2)
        self._file.setsampwidth(2)
        self._file.setframerate(sample_rate)
        self.frames = 0
        self.sample_rate = sample_rate

    def append(self, interleaved: bytes) -> None:
        if self._file is not None and interleaved:
            self._file.writeframes(interleaved)
            self.frames += len(interleaved) // 4

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
