"""Chat activity: spikes where the chat was planted busy, bad lines counted, both formats read."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

import pytest

from jobs.contract.errors import PermanentError
from pipelines.media.chat import analyse_chat
from samples.media import make_chat

BURSTS = [20.0, 47.5]
DURATION = 90.0


def overlaps_a_burst(start: float, end: float) -> bool:
    return any(start < burst + 5.0 and burst < end for burst in BURSTS)


@pytest.mark.parametrize("chat_format", ["jsonl", "csv"])
def test_spikes_cover_each_planted_burst_and_nothing_else(
    tmp_path: Path, chat_format: Literal["jsonl", "csv"]
) -> None:
    path = tmp_path / f"chat.{chat_format}"
    make_chat(path, duration_seconds=DURATION, bursts_at=BURSTS, format=chat_format, bad_lines=5)

    analysis = analyse_chat(path, duration_seconds=DURATION)

    for burst in BURSTS:
        assert any(span.start <= burst <= span.end for span in analysis.spikes), burst
    assert all(overlaps_a_burst(span.start, span.end) for span in analysis.spikes)
    assert analysis.bad_lines == 5
    assert len(analysis.rate_per_window) == DURATION / 5.0


@pytest.mark.parametrize("chat_format", ["jsonl", "csv"])
def test_every_good_line_is_counted(tmp_path: Path, chat_format: Literal["jsonl", "csv"]) -> None:
    path = tmp_path / f"chat.{chat_format}"
    make_chat(path, duration_seconds=60.0, bursts_at=[30.0], format=chat_format, bad_lines=7)
    lines = len(path.read_text().splitlines()) - (chat_format == "csv")

    analysis = analyse_chat(path, duration_seconds=60.0)

    assert (analysis.messages, analysis.bad_lines) == (lines - 7, 7)
    assert sum(analysis.rate_per_window) * 5.0 == pytest.approx(analysis.messages)


def test_quoted_csv_text_and_a_byte_order_mark_are_read(tmp_path: Path) -> None:
    path = tmp_path / "chat.csv"
    path.write_text('\ufefftimestamp_seconds,user,text\n1.5,ann,"well, that, was close"\n')

    analysis = analyse_chat(path, duration_seconds=10.0)

    assert (analysis.messages, analysis.bad_lines) == (1, 0)


def test_late_messages_within_the_slack_count_and_later_ones_are_bad(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    stamps = [2.0, 10.0, 12.0, 40.0]  # the recording is 10 s long
    path.write_text("".join(json.dumps({"timestamp_seconds": t}) + "\n" for t in stamps))

    analysis = analyse_chat(path, duration_seconds=10.0)

    assert (analysis.messages, analysis.bad_lines) == (3, 1)
    assert analysis.rate_per_window == [0.2, 0.4]


def test_a_log_of_nothing_but_bad_lines_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    path.write_text('not json\n{"timestamp_seconds": -1}\n{"text": "no time"}\n')

    with pytest.raises(PermanentError) as raised:
        analyse_chat(path, duration_seconds=60.0)

    assert raised.value.code == "INVALID_CHAT"


def test_an_empty_log_is_a_quiet_chat(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    path.write_text("\n\n")

    analysis = analyse_chat(path, duration_seconds=20.0)

    assert (analysis.messages, analysis.bad_lines, analysis.spikes) == (0, 0, [])
    assert analysis.rate_per_window == [0.0] * 4


def test_a_steady_chat_has_no_spikes(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    make_chat(path, duration_seconds=300.0, bursts_at=[], base_rate=2.0, seed=4)

    analysis = analyse_chat(path, duration_seconds=300.0)

    assert analysis.messages > 400
    assert analysis.spikes == []


def refusal(path: Path) -> PermanentError:
    """The error analysing `path` raises: a chat that breaks the parser is refused for good."""
    with pytest.raises(PermanentError) as raised:
        analyse_chat(path, duration_seconds=60.0)
    return raised.value


def test_a_csv_field_over_the_csv_limit_is_invalid_chat_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "chat.csv"
    # A quoted field may span lines: 70,000 short lines make one 140 kB field.
    path.write_text('timestamp_seconds,user,text\n1,ann,hi\n2,bob,"' + "la\n" * 70_000 + '"\n')

    error = refusal(path)

    assert error.code == "INVALID_CHAT"
    assert "field larger than field limit" in str(error)
    where = re.search(r"\(line (\d+)\)", str(error))
    assert where is not None
    assert 3 < int(where[1]) < 70_003  # inside the field, where it grew past 128 KiB


def test_a_200_kb_line_is_invalid_chat_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "chat.csv"
    path.write_text('timestamp_seconds,user,text\n1,ann,hi\n2,bob,"' + "x" * 200_000 + '"\n')

    error = refusal(path)

    assert error.code == "INVALID_CHAT"
    assert "line 3" in str(error)


@pytest.mark.parametrize("depth", [30_000, 100_000])
def test_a_json_line_nested_too_deep_is_invalid_chat_at_its_line(
    tmp_path: Path, depth: int
) -> None:
    path = tmp_path / "chat.jsonl"
    path.write_text('{"timestamp_seconds": 1}\n\n' + "[" * depth + "]" * depth + "\n")

    error = refusal(path)

    assert error.code == "INVALID_CHAT"
    assert "line 3" in str(error)


def test_timestamps_too_big_for_any_recording_are_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    huge = "1" + "0" * 400  # a JSON integer no float can hold
    path.write_text(f'{{"timestamp_seconds": 1}}\n{{"timestamp_seconds": {huge}}}\n')
    path.write_text(path.read_text() + '{"timestamp_seconds": 1e12}\n')

    analysis = analyse_chat(path, duration_seconds=10.0)

    assert (analysis.messages, analysis.bad_lines) == (1, 2)
    assert len(analysis.rate_per_window) == 2
