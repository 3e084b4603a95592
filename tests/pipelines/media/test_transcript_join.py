"""Joining spans' words (two hearings of one word near a boundary disagree by a frame or two),
and writing them as caption lines."""

from __future__ import annotations

from pipelines.media.models import Span
from pipelines.media.transcription.captions import group_segments, subrip, webvtt
from pipelines.media.transcription.models import TranscriptSpan, Word
from pipelines.media.transcription.reconcile import join_spans


def words(*timed: tuple[str, float, float]) -> list[Word]:
    return [Word(text=t, start=a, end=b, confidence=0.9) for t, a, b in timed]


def part(start: float, end: float, heard: list[Word], overlap: float = 5.0) -> TranscriptSpan:
    return TranscriptSpan(
        span=Span(start=start, end=end),
        heard=Span(start=max(0.0, start - overlap), end=end + overlap),
        engine="test",
        language="en-US",
        words=heard,
    )


def texts(joined: list[Word]) -> list[str]:
    return [word.text for word in joined]


def test_a_word_both_neighbours_heard_across_their_boundary_is_kept_once() -> None:
    # "clutch" straddles the boundary at 10 s; the left hears its middle before 10 s, the right
    # after it, so keeping each side's words by their middle alone would keep it twice.
    left = part(
        0.0,
        10.0,
        words(
            ("that", 8.9, 9.3),
            ("was", 9.3, 9.7),
            ("clutch", 9.7, 10.26),
            ("play", 10.26, 10.8),
            ("wow", 11.5, 11.9),
        ),
    )
    right = part(
        10.0,
        20.0,
        words(
            ("cat", 8.9, 9.3),
            ("was", 9.31, 9.76),
            ("clutch", 9.76, 10.3),
            ("play", 10.3, 10.8),
            ("wow", 11.5, 11.9),
        ),
    )

    joined, gaps = join_spans([left, right], 20.0)

    assert texts(joined) == ["that", "was", "clutch", "play", "wow"]
    assert gaps == []


def test_with_no_pause_near_a_boundary_each_word_is_still_kept_once() -> None:
    # Continuous speech: word edges abut, and the two hearings are 20 ms apart throughout.
    said = [(f"w{i}", 7.0 + 0.4 * i, 7.4 + 0.4 * i) for i in range(16)]
    left = part(0.0, 10.1, words(*said))
    right = part(10.1, 20.0, words(*((t, a + 0.02, b + 0.02) for t, a, b in said)))

    joined, _ = join_spans([left, right], 20.0)

    assert texts(joined) == [t for t, _, _ in said]


def test_the_cut_falls_in_a_pause_so_words_near_an_edge_come_from_who_heard_them_whole() -> None:
    # The right span's hearing starts at 5 s, mid-sentence: its first words are wrong. The pause
    # at 8.6-9.4 s is where the cut goes, so the left span's words are kept up to it.
    left = part(
        0.0,
        10.0,
        words(
            ("to", 7.0, 7.3),
            ("consider", 7.3, 8.0),
            ("it", 8.0, 8.6),
            ("he", 9.4, 9.7),
            ("was", 9.7, 10.1),
            ("not", 10.1, 10.5),
        ),
    )
    right = part(
        10.0,
        20.0,
        words(
            ("two", 7.0, 7.3),
            ("sitter", 7.3, 8.0),
            ("hit", 8.0, 8.6),
            ("he", 9.41, 9.71),
            ("was", 9.71, 10.11),
            ("not", 10.11, 10.5),
        ),
    )

    joined, _ = join_spans([left, right], 20.0)

    assert texts(joined) == ["to", "consider", "it", "he", "was", "not"]


def test_the_cut_stays_within_half_the_overlap_each_neighbour_heard() -> None:
    # Overlaps of 1 s: the right span's hearing starts at 9 s, in the middle of "be", which it
    # mishears. The pause at 7.5-8.5 s lies beyond half its overlap, so the cut is not there.
    left = part(
        0.0,
        10.0,
        words(("a", 7.0, 7.5), ("be", 8.5, 9.6), ("sea", 9.6, 10.3), ("dee", 10.3, 10.8)),
        overlap=1.0,
    )
    right = part(
        10.0, 20.0, words(("bee", 9.0, 9.6), ("sea", 9.6, 10.3), ("dee", 10.3, 10.8)), overlap=1.0
    )

    joined, _ = join_spans([left, right], 20.0)

    assert texts(joined) == ["a", "be", "sea", "dee"]


def test_a_failed_span_is_a_gap_and_its_neighbours_keep_only_their_own_words() -> None:
    first = part(0.0, 10.0, words(("one", 2.0, 2.4), ("two", 9.0, 9.4), ("three", 11.0, 11.4)))
    last = part(20.0, 30.0, words(("four", 18.0, 18.4), ("five", 21.0, 21.4)))

    joined, gaps = join_spans([first, None, last], 30.0)

    assert texts(joined) == ["one", "two", "five"]
    assert gaps == [Span(start=10.0, end=20.0)]


def test_words_group_into_caption_lines_at_pauses_and_before_they_grow_too_long() -> None:
    said = words(("he", 0.5, 0.7), ("was", 0.7, 1.0), ("not", 1.0, 1.4), ("ill", 2.5, 2.8))
    long = words(*((f"word{i}", 10.0 + 0.5 * i, 10.5 + 0.5 * i) for i in range(20)))

    segments = group_segments(said + long)

    assert [s.text for s in segments[:2]] == ["he was not", "ill"]
    assert (segments[0].start, segments[0].end) == (0.5, 1.4)
    assert all(s.end - s.start <= 6.0 and len(s.text) <= 84 for s in segments)
    assert sum(len(s.words) for s in segments) == len(said) + len(long)


def test_captions_are_written_as_webvtt_and_subrip() -> None:
    segments = group_segments(words(("hello", 3661.5, 3662.0), ("there", 3662.0, 3662.25)))

    assert webvtt(segments) == "WEBVTT\n\n01:01:01.500 --> 01:01:02.250\nhello there\n"
    assert subrip(segments) == "1\n01:01:01,500 --> 01:01:02,250\nhello there\n"
