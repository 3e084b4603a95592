"""What a job's result must own up to: streams the probe left out, stretches that would not
decode, and spans an analysis could not read. Each is one plain sentence, so a page or a CLI
shows them as they are ("3.2 s undecodable at 01:02:03 (audio)")."""

from __future__ import annotations

from pipelines.media.models import Span

# A stretch shorter than this is "under 0.1 s": one damaged packet of sound is 20 ms.
_SHORTEST_SHOWN = 0.1


def clock(seconds: float) -> str:
    """Seconds as HH:MM:SS, as a player shows a time."""
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def length(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds >= _SHORTEST_SHOWN else "under 0.1 s"


def undecodable(stretches: list[Span], what: str) -> list[str]:
    """One sentence per damaged stretch of `what` (audio, video)."""
    return [
        f"{length(s.end - s.start)} undecodable at {clock(s.start)} ({what})" for s in stretches
    ]


def unread(gaps: list[Span], what: str) -> list[str]:
    """One sentence per stretch an analysis could not read (its span failed)."""
    return [f"{length(g.end - g.start)} not analysed at {clock(g.start)} ({what})" for g in gaps]


def mostly_outside(spans: list[Span], damage: list[Span]) -> list[Span]:
    """The spans less than half inside damage: a damaged stretch decodes to nothing, which the
    loudness reads as silence, and a silence that is really damage is no silence."""

    def damaged(span: Span) -> float:
        return sum(max(0.0, min(span.end, d.end) - max(span.start, d.start)) for d in damage)

    return [span for span in spans if damaged(span) * 2 < span.end - span.start]


def clear_of(
    times: list[float], damage: list[Span], *, before: float = 0.0, after: float = 0.0
) -> list[float]:
    """The times not inside damage, nor `before` seconds ahead of it or `after` past its end:
    the first picture after a damaged stretch is compared with the last before it, which is no
    cut; and a decoder often turns the first damaged bytes into noise before it refuses them,
    which is no burst."""
    return [t for t in times if not any(d.start - before <= t <= d.end + after for d in damage)]
