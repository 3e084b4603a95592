"""What one store last knew of the documents it decided on, so the next decision can skip a read.

A processor decides on the same job again and again (claim, progress, finish, the next stage's
claim), and each decision reads the job and its runs first: a round trip a stage that reading
what this instance itself just wrote can save. A remembered document stands in for a snapshot;
the decision's writes carry the same preconditions as ever (the job as remembered, each run as
remembered or not existing), so a memory that another instance made stale fails the write and
the store reads and decides again. That costs one round trip more than reading first would
have, so a job whose memory went stale is not trusted from memory for a while (parallel items
on several instances write it all the time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cachetools import LRUCache, TTLCache

# Documents remembered per store: a job and the runs of its current stages are a handful each.
_DOCUMENTS = 512
# How long a job whose memory went stale is read before each decision again.
_DISTRUST_SECONDS = 30.0


@dataclass(frozen=True)
class Remembered:
    """A document as this store last read or wrote it, with what a snapshot offers the store:
    `reference`, `exists`, `to_dict()` and `update_time` (None if it did not exist)."""

    reference: Any
    data: dict[str, Any] | None
    update_time: datetime | None

    @property
    def exists(self) -> bool:
        return self.data is not None

    def to_dict(self) -> dict[str, Any] | None:
        return self.data


class DocumentMemory:
    """Remembered documents by path, newest write wins, and the jobs not to trust it for."""

    def __init__(self) -> None:
        self._documents: LRUCache[str, Remembered] = LRUCache(maxsize=_DOCUMENTS)
        self._distrusted: TTLCache[str, bool] = TTLCache(maxsize=1024, ttl=_DISTRUST_SECONDS)

    def recall(self, reference: Any) -> Remembered | None:
        return self._documents.get(reference.path)

    def trusted(self, job_id: str) -> bool:
        return job_id not in self._distrusted

    def keep(self, reference: Any, data: dict[str, Any] | None, update_time: Any) -> None:
        """Remember a document, unless what is remembered was written later (a read that
        started before this store's own write may answer after it)."""
        known = self._documents.get(reference.path)
        if (
            known is not None
            and known.update_time is not None
            and (update_time is None or update_time < known.update_time)
        ):
            return
        self._documents[reference.path] = Remembered(reference, data, update_time)

    def kept_snapshot(self, snapshot: Any) -> None:
        data = (snapshot.to_dict() or {}) if snapshot.exists else None
        self.keep(snapshot.reference, data, snapshot.update_time if snapshot.exists else None)

    def forget(self, reference: Any) -> None:
        self._documents.pop(reference.path, None)

    def distrust(self, job_id: str) -> None:
        self._distrusted[job_id] = True
