"""Loudness by ITU-R BS.1770-4 / EBU R 128: test signals in the manner of EBU Tech 3341 and
3342 read as the standard says and as pyloudnorm (the reference meter) reads them; the gates
drop what they should; 5.1 weighs its surrounds up and its LFE out; spans of any length add up
to the whole."""

from __future__ import annotations

from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pyloudnorm
import pytest

from pipelines.media.audio import analyse_audio, combine_loudness, measure_loudness
from pipelines.media.kweighting import channel_weights
from pipelines.media.models import Span
from tests.pipelines.conftest import Spoken
from tests.pipelines.media.recordings import loudness_gap

RATE = 48000
Samples = npt.NDArray[np.float64]


def sine(seconds: float, dbfs: float, hertz: float = 997.0, rate: int = RATE) -> Samples:
    """A sine whose peak is at `dbfs` (0 dBFS: full scale)."""
    t = np.arange(round(seconds * rate)) / rate
    samples: Samples = 10 ** (dbfs / 20) * np.sin(2 * np.pi * hertz * t)
    return samples


def write(path: Path, samples: Samples, layout: str, rate: int = RATE) -> Path:
    """`samples` (channels, instants) as 32-bit float WAV in `layout`."""
    with av.open(str(path), "w", format="wav") as container:
        stream = container.add_stream("pcm_f32le", rate=rate)
        stream.layout = layout
        for start in range(0, samples.shape[1], 4096):
            piece = np.ascontiguousarray(samples[:, start : start + 4096], dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(piece, format="fltp", layout=layout)
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def reference(samples: Samples, rate: int = RATE) -> float:
    """pyloudnorm's integrated loudness, with the standard's own filter coefficients."""
    meter = pyloudnorm.Meter(rate, filter_class="DeMan")
    return float(meter.integrated_loudness(samples.T))


@pytest.mark.parametrize("level", [-23.0, -33.0])
def test_a_997_hz_sine_reads_its_level_in_lufs(tmp_path: Path, level: float) -> None:
    # EBU Tech 3341 cases 1 and 2: stereo 997 Hz at -23 and -33 dBFS read -23 and -33 LUFS.
    tone = sine(20.0, level)
    path = write(tmp_path / "tone.wav", np.stack([tone, tone]), "stereo")

    analysis = analyse_audio(path)

    assert analysis.integrated_lufs == pytest.approx(level, abs=0.1)
    assert analysis.momentary_lufs[10] == pytest.approx(level, abs=0.1)
    assert analysis.short_term_lufs[20] == pytest.approx(level, abs=0.1)
    assert analysis.sample_peak_dbfs == pytest.approx(level, abs=0.05)


def test_the_relative_gate_leaves_out_the_quiet_part(tmp_path: Path) -> None:
    # As EBU Tech 3341 checks it: -36, -23, -36 dBFS for 10, 60, 10 s read -23 LUFS (the quiet
    # parts lie 13 LU under, past the relative gate).
    tone = np.concatenate([sine(10, -36), sine(60, -23), sine(10, -36)])
    samples = np.stack([tone, tone])
    path = write(tmp_path / "steps.wav", samples, "stereo")

    analysis = analyse_audio(path)

    assert analysis.integrated_lufs == pytest.approx(-23.0, abs=0.1)
    assert analysis.integrated_lufs == pytest.approx(reference(samples), abs=0.05)


def test_the_absolute_gate_leaves_out_what_is_under_minus_70(tmp_path: Path) -> None:
    # -72 dBFS (under the absolute gate) around 20 s at -23 reads -23.
    tone = np.concatenate([sine(20, -72), sine(20, -23), sine(20, -72)])
    path = write(tmp_path / "floor.wav", np.stack([tone, tone]), "stereo")

    analysis = analyse_audio(path)

    assert analysis.integrated_lufs == pytest.approx(-23.0, abs=0.1)


def test_loudness_range_reads_as_tech_3342_says(tmp_path: Path) -> None:
    # EBU Tech 3342 case 1: 20 s at -20 then 20 s at -30 dBFS has a loudness range of 10 LU.
    tone = np.concatenate([sine(20, -20), sine(20, -30)])
    path = write(tmp_path / "range.wav", np.stack([tone, tone]), "stereo")

    analysis = analyse_audio(path)

    assert analysis.loudness_range_lu == pytest.approx(10.0, abs=0.1)


def test_digital_silence_has_no_integrated_loudness(tmp_path: Path) -> None:
    path = write(tmp_path / "silence.wav", np.zeros((1, RATE * 5)), "mono")

    analysis = analyse_audio(path)

    assert analysis.integrated_lufs is None
    assert analysis.loudness_range_lu is None
    assert analysis.peaks == []
    assert [(s.start, s.end) for s in analysis.silences] == [(0.0, 5.0)]


def test_surround_channels_weigh_more_and_lfe_not_at_all(tmp_path: Path) -> None:
    front, surround = sine(20, -28.0), sine(20, -24.5)
    loud_lfe = sine(20, -6.0, hertz=60.0)
    samples = np.stack([front, front, front, loud_lfe, surround, surround])
    path = write(tmp_path / "five-one.wav", samples, "5.1")

    analysis = analyse_audio(path)

    # Against the stereo -23 dBFS sine that reads -23 LUFS: three fronts at -28 and two
    # surrounds at -24.5 weighed 1.41, the LFE not at all.
    power = 3 * 10 ** (-28 / 10) + 2 * 1.41 * 10 ** (-24.5 / 10)
    expected = -23.0 + 10 * np.log10(power / (2 * 10 ** (-23 / 10)))
    assert analysis.integrated_lufs == pytest.approx(expected, abs=0.1)
    without_lfe = samples[[0, 1, 2, 4, 5]]  # pyloudnorm's order: L, R, C, Ls, Rs
    assert analysis.integrated_lufs == pytest.approx(reference(without_lfe), abs=0.05)


def test_channel_weights_follow_the_layouts_names() -> None:
    assert channel_weights(["FL", "FR", "FC", "LFE", "BL", "BR"]).tolist() == pytest.approx(
        [1.0, 1.0, 1.0, 0.0, 1.41, 1.41]
    )
    assert channel_weights(["FL", "FR", "FC", "LFE", "SL", "SR"])[4:].tolist() == [1.41, 1.41]
    assert channel_weights(["FC"]).tolist() == [1.0]


@pytest.mark.parametrize("rate", [44100, 22050, 11025])
def test_music_like_noise_reads_as_pyloudnorm_reads_it(tmp_path: Path, rate: int) -> None:
    rng = np.random.default_rng(rate)
    gain = np.repeat(10 ** (rng.uniform(-30, 0, 45) / 20), rate)  # a new level every second
    samples = (0.2 * gain * rng.standard_normal((2, gain.size))).clip(-1, 1)
    path = write(tmp_path / "noise.wav", samples, "stereo", rate=rate)

    analysis = analyse_audio(path)

    assert analysis.integrated_lufs == pytest.approx(reference(samples, rate), abs=0.05)
    # pyloudnorm steps its short-term blocks by 90 ms and interpolates the percentiles; the
    # standard (and ffmpeg, within 0.1 LU of longrun here) by 100 ms.
    meter = pyloudnorm.Meter(rate, filter_class="DeMan")
    assert analysis.loudness_range_lu == pytest.approx(meter.loudness_range(samples.T), abs=1.0)


@pytest.mark.parametrize("span_seconds", [2.0, 6.0, 10.0])
def test_spans_of_any_length_add_up_to_the_whole(tmp_path: Path, span_seconds: float) -> None:
    rng = np.random.default_rng(7)
    gain = np.repeat(10 ** (rng.uniform(-40, 0, 30) / 20), RATE)
    samples = 0.2 * gain * rng.standard_normal((2, gain.size))
    path = write(tmp_path / "noise.wav", samples, "stereo")
    bounds = [*np.arange(0.0, 30.0, span_seconds), 30.0]
    spans = [Span(start=float(a), end=float(b)) for a, b in pairwise(bounds)]

    whole = analyse_audio(path)
    combined = combine_loudness([measure_loudness(path, span) for span in spans], 30.0)

    # The filters settle over each span's lead-in to within float rounding of the whole run.
    assert whole.integrated_lufs is not None
    assert combined.integrated_lufs == pytest.approx(whole.integrated_lufs, abs=0.01)
    assert whole.loudness_range_lu is not None
    assert combined.loudness_range_lu == pytest.approx(whole.loudness_range_lu, abs=0.01)
    assert loudness_gap(combined.momentary_lufs, whole.momentary_lufs) <= 0.1
    assert loudness_gap(combined.short_term_lufs, whole.short_term_lufs) <= 0.1


def test_real_speech_reads_as_pyloudnorm_reads_it(spoken: Spoken) -> None:
    # LibriVox read by a volunteer (Debian's pocketsphinx-testdata; skipped without it).
    with av.open(str(spoken.path)) as container:
        frames = [frame.to_ndarray() for frame in container.decode(audio=0)]
    samples = np.concatenate(frames, axis=1).astype(np.float64) / 32768.0

    analysis = analyse_audio(spoken.path)

    assert analysis.integrated_lufs == pytest.approx(reference(samples, 16000), abs=0.1)
    assert analysis.peaks  # the voice rises above its usual level somewhere
