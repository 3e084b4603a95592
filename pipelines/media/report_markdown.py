"""The report for people: a Markdown page of the highlights, each with why it was picked and the
transcript lines said in it (report.json holds everything, for programs)."""

from __future__ import annotations

from pipelines.media.models import Highlight, MediaInfo
from pipelines.media.report import clock


def markdown_report(media: MediaInfo, highlights: list[Highlight]) -> str:
    """`report.md`: the recording in a line, then each highlight as a section."""
    kind = "video" if media.has_video else "audio"
    lines = [
        "# Highlights",
        "",
        f"{clock(media.duration_seconds)} of {kind} ({media.format_name}), "
        f"{len(highlights)} highlight{'s' if len(highlights) != 1 else ''}.",
    ]
    for number, highlight in enumerate(highlights, start=1):
        lines += [
            "",
            f"## {number}. {clock(highlight.start)} to {clock(highlight.end)} "
            f"(score {highlight.score:.2f})",
            "",
            *(f"- {_plain(reason)}" for reason in highlight.reasons),
        ]
        if highlight.transcript:
            lines.append("")
            lines += [
                f"> **{clock(line.start)}** {_plain(line.text)}  " for line in highlight.transcript
            ]
    return "\n".join(lines) + "\n"


def _plain(text: str) -> str:
    """`text` with Markdown's markup characters escaped: transcripts and keywords are data."""
    return "".join(f"\\{c}" if c in "\\`*_{}[]<>()#+-!|" else c for c in text)
