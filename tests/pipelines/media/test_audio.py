"""Loudness per window, with the planted bursts found as loud moments and the planted gaps as
silences, judged against the recording's own loudness."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest
from scipy import signal

from jobs.contract.errors import PermanentError
from pipelines.media.audio import analyse_audio, find_peaks, find_silences
from pipelines.media.kweighting import k_weighting
from pipelines.media.loudness import FLOOR_LUFS, Spread
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
    # The bursts' sound is -6 dBFS per channel before K-weighting lifts its noise; two channels.
    assert all(-5.0 <= peak.lufs <= -1.0 for peak in planted.peaks)


def test_the_planted_quiet_span_is_the_only_silence(planted: AudioAnalysis) -> None:
    [silence] = planted.silences

    assert abs(silence.start - QUIET.start) <= 1.0
    assert abs(silence.end - QUIET.end) <= 1.0


def test_loudness_has_a_window_every_400_ms_at_the_planted_levels(
    planted: AudioAnalysis,
) -> None:
    def at(seconds: float) -> float:
        return planted.momentary_lufs[int(seconds / planted.window_seconds)]

    assert len(planted.momentary_lufs) == round(DURATION / 0.4)
    assert len(planted.short_term_lufs) == len(planted.momentary_lufs)
    assert planted.duration_seconds == pytest.approx(DURATION)
    assert at(3.0) == pytest.approx(-25.0, abs=3.0)
    assert at(BURSTS[0] + 1.0) == pytest.approx(-3.0, abs=2.0)
    assert at(17.0) == FLOOR_LUFS
    # The bursts carry the gated integrated loudness; the bed is what it usually sounds like.
    assert planted.integrated_lufs == pytest.approx(-3.0, abs=2.0)
    assert planted.typical_lufs == pytest.approx(-25.0, abs=3.0)


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
def test_the_meter_matches_scipy_over_the_whole_signal_whatever_the_frame_size(
    sample_format: str, size: int
) -> None:
    rate = 8000
    rng = np.random.default_rng(1)
    gain = np.repeat(rng.uniform(0.01, 0.5, 40), rate // 4)
    samples = (rng.standard_normal((2, gain.size)) * gain).clip(-1, 1).astype(np.float32)
    meter = LoudnessMeter(sample_rate=rate)

    for frame in frames_of(samples, rate=rate, size=size, sample_format=sample_format):
        meter.add(frame)
    metered = meter.finish()

    filtered = signal.sosfilt(k_weighting(rate), samples.astype(np.float64), axis=1)
    power = np.square(filtered).sum(axis=0).reshape(-1, rate // 10).mean(axis=1)
    np.testing.assert_allclose(10 * np.log10(metered.powers), 10 * np.log10(power), atol=0.01)
    assert metered.sample_peak == pytest.approx(float(np.abs(samples).max()), abs=1e-4)


def test_a_jump_in_the_timestamps_is_measured_as_silence() -> None:
    rate = 8000
    samples = np.full((2, rate), 0.5, dtype=np.float32)
    meter = LoudnessMeter(sample_rate=rate)
    first, second = frames_of(samples, rate=rate, size=rate // 2, sample_format="fltp")

    meter.add(first, at=0)
    meter.add(second, at=2 * rate)  # 1.5 s of nothing between them
    powers = meter.finish().powers

    assert powers.size == 25
    assert (powers[5:20] == 0.0).all()
    assert (powers[:5] > 0.0).all()
    assert (powers[20:] > 0.0).all()


def spread(typical: float, range_lu: float) -> Spread:
    return Spread(range_lu=range_lu, typical_lufs=typical)


def test_loud_moments_need_a_clear_rise_over_the_typical_level() -> None:
    levels = np.full(100, -30.0)
    levels[20:24] = -28.0  # 2 LU up: an ordinary swell
    levels[60:64] = -22.0  # 8 LU up on a steady recording: a loud moment

    peaks = find_peaks(levels, 0.4, spread(-30.0, 4.0))

    assert [(peak.time, peak.lufs) for peak in peaks] == [(24.0, -22.0)]


def test_a_dynamic_recording_needs_a_bigger_rise() -> None:
    levels = np.full(100, -30.0)
    levels[20:24] = -23.0  # 7 LU up, ordinary in a recording with a 16 LU range
    levels[60:64] = -17.0

    peaks = find_peaks(levels, 0.4, spread(-30.0, 16.0))

    assert [peak.time for peak in peaks] == [24.0]


def test_loud_windows_a_moment_apart_are_one_peak() -> None:
    levels = np.full(100, -30.0)
    levels[[40, 42, 44]] = -8.0

    peaks = find_peaks(levels, 0.4, spread(-30.0, 4.0))

    assert [peak.time for peak in peaks] == [16.0]


def test_a_quiet_recording_has_quieter_silences() -> None:
    levels = np.full(100, -50.0)  # a soft-spoken podcast: not silence
    levels[10:16] = -75.0  # but this is

    silences = find_silences(levels, 0.4, 40.0, -50.0)

    assert silences == [Span(start=4.0, end=6.4)]


def test_silence_is_never_louder_than_minus_45() -> None:
    levels = np.full(100, -10.0)  # a loud stream
    levels[10:16] = -40.0  # a quiet stretch, but something sounds
    levels[50:56] = -50.0  # this is silence

    silences = find_silences(levels, 0.4, 40.0, -10.0)

    assert silences == [Span(start=20.0, end=22.4)]


def test_short_gaps_are_not_silences() -> None:
    levels = np.full(100, -30.0)
    levels[10:12] = FLOOR_LUFS

    assert find_silences(levels, 0.4, 40.0, -30.0) == []
