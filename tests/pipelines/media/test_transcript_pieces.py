"""How a transcription item cuts its span into pieces (pauses only, about a target long, covering
the sound end to end) and what it saves after each: plain functions, no engine or emulator."""

from __future__ import annotations

from itertools import pairwise

from annotated_types import Le

from jobs.contract.settings import Settings
from pipelines.media.spec import STAGES
from pipelines.media.transcription.checkpoints import MAX_BYTES, SpanCheckpoint, resumed
from pipelines.media.transcription.models import Word
from pipelines.media.transcription.pieces import group_pieces

RATE = 100  # samples a second: small numbers that read as centiseconds


def sentences(count: int, *, every: float, lasting: float) -> list[tuple[int, int]]:
    """`count` utterances `lasting` s long, one starting every `every` s."""
    return [(round(n * every * RATE), round((n * every + lasting) * RATE)) for n in range(count)]


def test_pieces_cover_the_sound_end_to_end_and_are_cut_in_the_middle_of_pauses() -> None:
    utterances = sentences(10, every=2.0, lasting=1.5)  # a 0.5 s pause after each

    pieces = group_pieces(utterances, total=20 * RATE, target=5 * RATE)

    assert pieces[0][0] == 0
    assert pieces[-1][1] == 20 * RATE
    assert all(a[1] == b[0] for a, b in pairwise(pieces))
    cuts = [last for _first, last in pieces[:-1]]
    # Each piece closes at the first pause once its utterances reach 5 s: after the third
    # (5.5 s in), mid-pause at 5.75 s; then after the sixth, and the ninth.
    assert cuts == [575, 1175, 1775]
    assert all(not (first < cut < last) for cut in cuts for first, last in utterances)


def test_a_recording_without_speech_is_one_piece() -> None:
    assert group_pieces([], total=300 * RATE, target=60 * RATE) == [(0, 300 * RATE)]


def test_sound_shorter_than_the_target_is_one_piece() -> None:
    utterances = sentences(5, every=2.0, lasting=1.0)

    assert group_pieces(utterances, total=10 * RATE, target=60 * RATE) == [(0, 10 * RATE)]


def test_speech_without_a_pause_is_cut_between_split_utterances_only_when_far_too_long() -> None:
    # One long monologue that the voice detector split every 10 s at its quietest moment, and
    # no pause anywhere: a piece runs on to twice the target, then is cut at such a split.
    utterances = sentences(12, every=10.0, lasting=10.0)

    pieces = group_pieces(utterances, total=120 * RATE, target=25 * RATE)

    assert [last for _first, last in pieces[:-1]] == [50 * RATE, 100 * RATE]


def test_a_pause_is_preferred_to_a_split_utterance() -> None:
    abutting = sentences(4, every=10.0, lasting=10.0)  # 0-40 s without a pause
    paused = [(4500, 5500), (6000, 7000)]  # then a pause at 40-45 s and 55-60 s

    pieces = group_pieces([*abutting, *paused], total=70 * RATE, target=30 * RATE)

    assert pieces[0] == (0, 4250)


def test_a_checkpoint_gives_back_the_words_it_saved_for_the_same_pieces_only() -> None:
    words = [Word(text="clutch", start=1.25, end=1.5, confidence=0.75)] * 3
    saved = SpanCheckpoint.of([4800, 9600], 1, words).model_dump()

    again = resumed(saved, [4800, 9600])

    assert again is not None
    assert (again.done, again.words()) == (1, words)
    assert resumed(saved, [4800, 9000]) is None  # other pieces: start over
    assert resumed(None, [4800, 9600]) is None
    assert resumed({"something": "else"}, [4800, 9600]) is None


def test_the_densest_speech_a_span_holds_checkpoints_far_below_a_firestore_document() -> None:
    # Fast talk, 250 words a minute of 6 letters, over a 5-minute span and its 5 s overlaps.
    talk = [Word(text="clutch", start=1.0, end=1.2, confidence=0.5)] * 1300
    # A degenerate decode: a 20-letter word every 30 ms (PocketSphinx's shortest word is three
    # 10 ms frames), far past any real speech.
    noise = [Word(text="internationalisation", start=1.0, end=1.03, confidence=0.5)] * 10_400
    plan = [960_000] * 5

    assert SpanCheckpoint.of(plan, 4, talk).stored_bytes() < 64 * 1024
    assert SpanCheckpoint.of(plan, 4, noise).fits
    assert not SpanCheckpoint.of(plan, 4, noise * 2).fits  # then it is not saved at all
    assert MAX_BYTES <= 1024 * 1024 // 2


def test_a_span_outlasting_the_largest_time_budget_goes_on_instead_of_timing_out() -> None:
    # A delivery that saved a piece and runs out of budget continues in the next, spending no
    # attempt, only while the stage's own limit lies past the budget; at or below it, it would
    # end in STAGE_TIMEOUT and start over, and a slow span would spend all its attempts.
    field = Settings.model_fields["stage_time_budget_seconds"]
    largest_budget = next(m.le for m in field.metadata if isinstance(m, Le))
    transcribe = next(stage for stage in STAGES if stage.name == "transcribe")
    assert transcribe.timeout_seconds > float(largest_budget)
