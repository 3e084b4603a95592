"""Highlights: every planted moment is found, and nothing unplanted outranks it."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from pipelines.media.audio import analyse_audio, find_peaks
from pipelines.media.chat import analyse_chat
from pipelines.media.highlights import score_highlights
from pipelines.media.loudness import Spread
from pipelines.media.models import (
    AudioAnalysis,
    ChatAnalysis,
    Highlight,
)
from pipelines.media.scenes import find_scene_cuts
from pipelines.media.spec import MediaOptions
from samples.media import make_audio, make_chat, make_video

DURATION = 60.0
BURSTS = [12.5, 41.0]
CHAT_BURSTS = [26.0]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("highlights")


@pytest.fixture(scope="module")
def audio(media: Path) -> AudioAnalysis:
    path = media / "stream.wav"
    make_audio(path, duration_seconds=DURATION, bursts_at=BURSTS, sample_rate=16000, channels=1)
    return analyse_audio(path)


@pytest.fixture(scope="module")
def chat(media: Path) -> ChatAnalysis:
    path = media / "chat.jsonl"
    make_chat(path, duration_seconds=DURATION, bursts_at=CHAT_BURSTS, bad_lines=2)
    return analyse_chat(path, duration_seconds=DURATION)


def found(planted: float, highlight: Highlight) -> bool:
    return highlight.start <= planted <= highlight.end or abs(highlight.start - planted) <= 1.0


def assert_planted_lead(highlights: list[Highlight], planted: list[float]) -> None:
    """Each planted time is found, and every highlight that is not planted scores lower."""
    hits = [h for h in highlights if any(found(t, h) for t in planted)]
    for time in planted:
        assert any(found(time, h) for h in hits), (time, highlights)
    others = [h for h in highlights if h not in hits]
    assert all(other.score < min(h.score for h in hits) for other in others), highlights


def assert_well_formed(highlights: list[Highlight], options: MediaOptions) -> None:
    assert [h.start for h in highlights] == sorted(h.start for h in highlights)
    for before, after in pairwise(highlights):
        assert before.end <= after.start
    for highlight in highlights:
        assert (
            options.min_highlight_seconds
            <= highlight.end - highlight.start
            <= options.max_highlight_seconds
        )
        assert 0.0 < highlight.score <= 1.0
        assert highlight.reasons


def test_planted_bursts_and_chat_spikes_lead_the_highlights(
    audio: AudioAnalysis, chat: ChatAnalysis
) -> None:
    options = MediaOptions(highlights=5)

    highlights = score_highlights(
        duration_seconds=DURATION, audio=audio, scenes=None, chat=chat, options=options
    )

    assert_planted_lead(highlights, BURSTS + CHAT_BURSTS)
    assert_well_formed(highlights, options)
    reasons = " / ".join(reason for h in highlights for reason in h.reasons)
    assert "loud moment at 12.4 s" in reasons
    assert "chat spike" in reasons


def test_audio_alone_is_enough(audio: AudioAnalysis) -> None:
    options = MediaOptions()

    highlights = score_highlights(
        duration_seconds=DURATION, audio=audio, scenes=None, chat=None, options=options
    )

    assert_planted_lead(highlights, BURSTS)
    assert_well_formed(highlights, options)


def test_chat_alone_is_enough(chat: ChatAnalysis) -> None:
    highlights = score_highlights(
        duration_seconds=DURATION, audio=None, scenes=None, chat=chat, options=MediaOptions()
    )

    assert_planted_lead(highlights, CHAT_BURSTS)


def test_a_video_with_cuts_still_ranks_the_planted_bursts_first(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    cuts, bursts = [6.0, 15.0, 22.0], [9.0, 25.0]
    make_video(path, duration_seconds=30.0, cuts_at=cuts, size=(96, 54), bursts_at=bursts)
    options = MediaOptions(min_highlight_seconds=4.0, max_highlight_seconds=10.0)

    highlights = score_highlights(
        duration_seconds=30.0,
        audio=analyse_audio(path),
        scenes=find_scene_cuts(path),
        chat=None,
        options=options,
    )

    assert_planted_lead(highlights, bursts)
    assert_well_formed(highlights, options)


def test_count_keeps_only_the_best(audio: AudioAnalysis, chat: ChatAnalysis) -> None:
    def top(count: int) -> list[Highlight]:
        options = MediaOptions(highlights=count)
        return score_highlights(
            duration_seconds=DURATION, audio=audio, scenes=None, chat=chat, options=options
        )

    [best] = top(1)

    assert best.score == max(h.score for h in top(5))


def synthetic(levels: npt.NDArray[np.float64]) -> AudioAnalysis:
    """An analysis of 0.5 s windows with the given momentary levels, as analyse_audio would
    report it: the typical level their median, their range the 10th to 95th percentile."""
    low, typical, high = np.percentile(levels, [10, 50, 95])
    spread = Spread(range_lu=float(high - low), typical_lufs=float(typical))
    return AudioAnalysis(
        window_seconds=0.5,
        duration_seconds=levels.size * 0.5,
        momentary_lufs=levels.tolist(),
        short_term_lufs=levels.tolist(),
        typical_lufs=spread.typical_lufs,
        loudness_range_lu=spread.range_lu,
        peaks=find_peaks(levels, 0.5, spread),
    )


@pytest.mark.parametrize(("typical", "burst"), [(-45.0, -28.0), (-12.0, 0.0)])
def test_quiet_podcasts_and_loud_streams_are_judged_by_their_own_norm(
    typical: float, burst: float
) -> None:
    rng = np.random.default_rng(5)
    levels = typical + rng.uniform(-2.0, 2.0, 240)
    levels[100:104] = burst  # 50 s to 52 s

    highlights = score_highlights(
        duration_seconds=120.0,
        audio=synthetic(levels),
        scenes=None,
        chat=None,
        options=MediaOptions(),
    )

    assert [found(50.0, h) for h in highlights] == [True]


def test_a_long_loud_stretch_is_cut_to_the_longest_allowed() -> None:
    levels = np.full(600, -30.0)
    levels[100:300] = -5.0  # 100 s of shouting
    options = MediaOptions(highlights=1, max_highlight_seconds=20.0)

    [highlight] = score_highlights(
        duration_seconds=300.0, audio=synthetic(levels), scenes=None, chat=None, options=options
    )

    assert highlight.end - highlight.start == pytest.approx(20.0)
    assert 50.0 <= highlight.start < highlight.end <= 150.0


def test_a_recording_where_nothing_happens_has_no_highlights() -> None:
    levels = np.full(240, -30.0) + np.random.default_rng(6).uniform(-1.0, 1.0, 240)

    highlights = score_highlights(
        duration_seconds=120.0,
        audio=synthetic(levels),
        scenes=None,
        chat=None,
        options=MediaOptions(),
    )

    assert highlights == []


def test_a_recording_shorter_than_a_highlight_is_one_whole_highlight() -> None:
    levels = np.array([-30.0, -30.0, -5.0, -30.0, -30.0, -30.0])

    [highlight] = score_highlights(
        duration_seconds=3.0,
        audio=synthetic(levels),
        scenes=None,
        chat=None,
        options=MediaOptions(min_highlight_seconds=5.0),
    )

    assert (highlight.start, highlight.end) == (0.0, 3.0)


def test_no_signal_at_all_gives_no_highlights() -> None:
    highlights = score_highlights(
        duration_seconds=60.0, audio=None, scenes=None, chat=None, options=MediaOptions()
    )

    assert highlights == []
