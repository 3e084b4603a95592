"""Damaged recordings: a corrupt stretch is skipped, placed where it lies and reported, and the
rest is analysed; streams no analysis reads are ignored; only a file that decodes nothing is
UNSUPPORTED_MEDIA."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from jobs.contract.errors import PermanentError
from pipelines.media.audio import analyse_audio, measure_loudness
from pipelines.media.caveats import clear_of, clock, mostly_outside, undecodable
from pipelines.media.decoding import Damage, joined
from pipelines.media.models import Span
from pipelines.media.probe import probe_media
from pipelines.media.scenes import combine_scenes, find_scene_cuts, sample_scenes
from pipelines.media.spans import WHOLE
from samples.damaged import overwrite_middle, sound_cut_in, with_skeleton
from samples.media import make_audio, make_video
from tests.pipelines.media.recordings import make_opus

DURATION = 20.0
BURSTS = [3.0, 15.0]
CUTS = [4.0, 16.0]


def loud_from(levels: list[float], window: float, after: float) -> float:
    """When the first window from `after` on within 3 dB of the loudest after it starts."""
    first = round(after / window)
    rest = np.asarray(levels[first:])
    return (first + int(np.argmax(rest >= rest.max() - 3.0))) * window


def damaged(tmp_path: Path, suffix: str, length: int) -> Path:
    whole = tmp_path / f"whole{suffix}"
    if suffix == ".ogg":
        make_opus(whole, duration_seconds=DURATION, bursts_at=BURSTS)
    elif suffix == ".mp3":
        make_audio(whole, duration_seconds=DURATION, bursts_at=BURSTS)
    else:
        make_video(whole, duration_seconds=DURATION, cuts_at=CUTS, bursts_at=BURSTS)
    target = tmp_path / f"damaged{suffix}"
    overwrite_middle(whole, target, at=0.5, length=length)
    return target


@pytest.mark.parametrize(
    ("suffix", "length"), [(".mp4", 40_000), (".mpg", 40_000), (".mp3", 8_000), (".ogg", 4_000)]
)
def test_a_corrupt_stretch_in_the_middle_is_skipped_and_the_rest_measured(
    tmp_path: Path, suffix: str, length: int
) -> None:
    path = damaged(tmp_path, suffix, length)

    info = probe_media(path)
    part = measure_loudness(path, WHOLE)

    assert info.duration_seconds == pytest.approx(DURATION, abs=0.1)
    assert part.undecodable, "the damage must be reported"
    assert all(7.0 <= stretch.start <= 13.0 for stretch in part.undecodable)
    assert sum(s.end - s.start for s in part.undecodable) < 3.0
    # The sound after the damage is measured, its burst where it was planted.
    levels = part.momentary_lufs
    assert len(levels) == pytest.approx(DURATION / part.window_seconds, abs=2)
    assert loud_from(levels, part.window_seconds, 13.0) == pytest.approx(15.0, abs=1.0)


def test_a_corrupt_stretch_of_pictures_is_skipped_and_cuts_after_it_found(tmp_path: Path) -> None:
    path = damaged(tmp_path, ".mp4", 40_000)

    part = sample_scenes(path, WHOLE)
    cuts = combine_scenes([part], DURATION).cuts

    # The pictures are skipped from the damage to the next keyframe.
    assert [round(s.start) for s in part.undecodable] == [10]
    assert part.undecodable[0].end == pytest.approx(14.0, abs=0.1)
    assert part.times[-1] == pytest.approx(DURATION, abs=0.5)
    # The first picture after the damage, compared with the last before, is no cut.
    assert [round(cut) for cut in clear_of(cuts, part.undecodable, after=0.25)] == [4, 16]


def test_ogg_with_a_skeleton_data_stream_is_probed_and_its_sound_measured(tmp_path: Path) -> None:
    plain = make_opus(tmp_path / "plain.ogg", duration_seconds=8.0, bursts_at=[5.0])
    path = with_skeleton(plain, tmp_path / "skeleton.ogg")

    info = probe_media(path)
    analysis = analyse_audio(path)

    assert [(stream.kind, stream.codec) for stream in info.streams] == [
        ("data", "data"),
        ("audio", "opus"),
    ]
    assert (info.has_audio, info.has_video, info.warnings) == (True, False, [])
    assert info.duration_seconds == pytest.approx(8.0, abs=0.1)
    assert loud_from(analysis.momentary_lufs, analysis.window_seconds, 0.0) == pytest.approx(
        5.0, abs=0.5
    )


def test_an_mpeg_program_stream_is_probed_and_analysed(tmp_path: Path) -> None:
    path = tmp_path / "recorder.mpg"
    make_video(path, duration_seconds=12.0, cuts_at=[4.0, 8.0], bursts_at=[6.0])

    info = probe_media(path)
    cuts = find_scene_cuts(path).cuts
    audio = analyse_audio(path)

    assert (info.format_name, info.has_audio, info.has_video) == ("mpeg", True, True)
    assert info.video is not None
    assert info.video.codec == "mpeg2video"
    assert info.duration_seconds == pytest.approx(12.0, abs=0.1)
    assert [round(cut) for cut in cuts] == [4, 8]
    assert loud_from(audio.momentary_lufs, audio.window_seconds, 0.0) == pytest.approx(6.0, abs=0.5)


def test_a_recording_whose_first_sound_packet_is_bad_keeps_its_sound(tmp_path: Path) -> None:
    # As in an AVI ripped from a DVD whose first AC3 chunk starts mid-frame (the real one is in
    # benchmarks/real_media/chain.py); Matroska keeps the packets' timestamps when rewritten.
    whole = tmp_path / "whole.mkv"
    make_video(whole, duration_seconds=6.0, cuts_at=[], bursts_at=[2.0])
    path = sound_cut_in(whole, tmp_path / "rip.mkv", drop_bytes=100)

    info = probe_media(path)
    part = measure_loudness(path, WHOLE)

    assert (info.has_audio, info.has_video, info.warnings) == (True, True, [])
    assert [s.start for s in part.undecodable] == [0.0]
    assert loud_from(part.momentary_lufs, part.window_seconds, 0.0) == pytest.approx(2.0, abs=0.5)


def test_a_file_whose_sound_never_decodes_is_unsupported(tmp_path: Path) -> None:
    whole = tmp_path / "whole.m4a"
    make_audio(whole, duration_seconds=10.0, bursts_at=[])
    path = tmp_path / "noise.m4a"
    # Everything past the index (the file is written index first) is noise.
    with av.open(str(whole)) as container:
        first = next(container.demux(container.streams.audio[0]))
        assert first.pos is not None
        start = first.pos
    data = bytearray(whole.read_bytes())
    data[start:] = np.random.default_rng(15).integers(0, 256, len(data) - start, np.uint8).tobytes()
    path.write_bytes(bytes(data))

    with pytest.raises(PermanentError) as raised:
        probe_media(path)

    assert raised.value.code == "UNSUPPORTED_MEDIA"


def test_damage_joins_across_spans_and_reads_as_a_sentence() -> None:
    first, second = Damage(), Damage()
    first.note(3598.0, 3600.4)
    second.note(3600.0, 3601.2)
    second.note(3900.0, 3900.02)

    stretches = joined(
        first.within(Span(start=0, end=3600)) + second.within(Span(start=3600, end=7200))
    )

    assert stretches == [Span(start=3598.0, end=3601.2), Span(start=3900.0, end=3900.02)]
    assert undecodable(stretches, "audio") == [
        "3.2 s undecodable at 00:59:58 (audio)",
        "under 0.1 s undecodable at 01:05:00 (audio)",
    ]
    assert clock(3723.9) == "01:02:03"


def test_a_silence_that_is_really_damage_is_no_silence() -> None:
    silences = [Span(start=10, end=14), Span(start=30, end=33)]

    kept = mostly_outside(silences, [Span(start=9.5, end=13.0)])

    assert kept == [Span(start=30, end=33)]
