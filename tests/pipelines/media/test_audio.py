"""Loudness per window, with the planted bursts found as peaks and the planted gaps as silences."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from jobs.contract.errors import PermanentError
from pipelines.media.audio import (
    FLOOR_DBFS,
    analyse_audio,
    find_peaks,
    find_silences,
)
from pipelines.media.meter import LoudnessMeter
from pipelines.media.models import AudioAnalysis, Span
from samples.media import make_audio, make_video

BURSTS = [8.0, 27.5]
QUIET = Span(start=15.0, end=19.0)
DURATION = 40.0


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> AudioAnalysis:
    path = tmp_path_factory.mktemp("audio") / "planted.wav"
    make_audio(
        path, duration_seconds=DURATION, bursts_at=BURSTS, quiet_spans=[(QUIET.start, QUIET.end)]
    )
    return analyse_audio(path)


def test_each_planted_burst_is_a_peak_and_nothing_else_is(planted: AudioAnalysis) -> None:
    times = [peak.time for peak in planted.peaks]

    assert len(times) == len(BURSTS)
    for burst, found in zip(BURSTS, times, strict=True):
        assert abs(found - burst) <= 1.0
    assert all(-9.0 <= peak.dbfs <= -4.0 for peak in planted.peaks)


def test_the_planted_quiet_span_is_the_only_silence(planted: AudioAnalysis) -> None:
    [silence] = planted.silences

    assert abs(silence.start - QUIET.start) <= 1.0
    assert abs(silence.end - QUIET.end) <= 1.0


def test_loudness_has_a_window_every_half_second_at_the_planted_levels(
    planted: AudioAnalysis,
) -> None:
    def at(seconds: float) -> float:
        return planted.loudness_dbfs[int(seconds / planted.window_seconds)]

    assert len(planted.loudness_dbfs) == int(DURATION / 0.5)
    assert planted.duration_seconds == pytest.approx(DURATION)
    assert at(3.0) == pytest.approx(-30.0, abs=3.0)
    assert at(BURSTS[0] + 1.0) == pytest.approx(-6.0, abs=2.0)
    assert at(17.0) == FLOOR_DBFS


@pytest.mark.parametrize("suffix", [".m4a", ".mp3"])
def test_compressed_audio_gives_the_same_peaks(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"burst{suffix}"
    make_audio(path, duration_seconds=20.0, bursts_at=[11.0], channels=1, sample_rate=22050)

    analysis = analyse_audio(path)

    assert [round(peak.time) for peak in analysis.peaks] == [11]
    assert analysis.silences == []


def test_progress_rises_to_one(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    make_audio(path, duration_seconds=30.0, bursts_at=[])
    seen: list[float] = []

    analyse_audio(path, progress=seen.append)

    assert seen[-1] == 1.0
    assert seen == sorted(seen)
    assert all(0.0 <= fraction <= 1.0 for fraction in seen)


def test_a_video_without_sound_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "silent.mp4"
    make_video(path, duration_seconds=1.0, cuts_at=[], size=(64, 36), with_audio=False)

    with pytest.raises(PermanentError) as raised:
        analyse_audio(path)

    assert raised.value.code == "UNSUPPORTED_MEDIA"


def frames_of(
    samples: npt.NDArray[np.float32], *, rate: int, size: int, sample_format: str
) -> list[av.AudioFrame]:
    """Frames of `size` samples each, as a decoder would hand them over."""
    frames = []
    for start in range(0, samples.shape[1], size):
        chunk = np.ascontiguousarray(samples[:, start : start + size])
        if sample_format == "s16":  # packed: one plane, channels interleaved
            packed = (chunk.T.reshape(1, -1) * 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(packed, format="s16", layout="stereo")
        else:
            frame = av.AudioFrame.from_ndarray(chunk, format=sample_format, layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        frames.append(frame)
    return frames


@pytest.mark.parametrize(("sample_format", "size"), [("fltp", 1000), ("s16", 4096), ("fltp", 7)])
def test_the_meter_matches_numpy_whatever_the_frame_size(sample_format: str, size: int) -> None:
    rate, window = 8000, 0.25
    rng = np.random.default_rng(1)
    gain = np.repeat(rng.uniform(0.01, 0.5, 40), rate // 4)
    samples = (rng.standard_normal((2, gain.size)) * gain).clip(-1, 1).astype(np.float32)
    meter = LoudnessMeter(sample_rate=rate, window_seconds=window)

    for frame in frames_of(samples, rate=rate, size=size, sample_format=sample_format):
        meter.add(frame)
    levels = meter.finish()

    power = np.square(samples.astype(np.float64)).mean(axis=0).reshape(-1, rate // 4).mean(axis=1)
    np.testing.assert_allclose(levels, 10 * np.log10(power), atol=0.01)


def test_peaks_need_a_clear_rise_over_the_typical_level() -> None:
    levels = np.full(100, -30.0)
    levels[20:24] = -24.0  # 6 dB up: an ordinary swell
    levels[60:64] = -12.0  # 18 dB up: a burst

    peaks = find_peaks(levels, window_seconds=0.5)

    assert [(peak.time, peak.dbfs) for peak in peaks] == [(30.0, -12.0)]


def test_loud_windows_a_moment_apart_are_one_peak() -> None:
    levels = np.full(100, -30.0)
    levels[[40, 42, 44]] = -8.0

    peaks = find_peaks(levels, window_seconds=0.5)

    assert [peak.time for peak in peaks] == [20.0]


def test_a_quiet_recording_has_quieter_silences() -> None:
    levels = np.full(100, -50.0)  # a soft-spoken podcast: not silence
    levels[10:16] = -80.0  # but this is

    silences = find_silences(levels, window_seconds=0.5, duration=50.0)

    assert silences == [Span(start=5.0, end=8.0)]


def test_short_gaps_are_not_silences() -> None:
    levels = np.full(100, -30.0)
    levels[10] = FLOOR_DBFS

    assert find_silences(levels, window_seconds=0.5, duration=50.0) == []
