"""Analyses read straight from Cloud Storage (the emulator) with ranged reads: the same results as
from a local file, and a span costs about its share of the file's bytes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobs.cloud.storage import RangedReader, SourceChanged, Storage
from jobs.contract.settings import Settings
from pipelines.media.audio import analyse_audio, combine_loudness, measure_loudness
from pipelines.media.models import Span
from pipelines.media.probe import probe_media
from pipelines.media.scenes import combine_scenes, find_scene_cuts, sample_scenes
from pipelines.media.thumbnails import video_thumbnail
from tests.pipelines.media.recordings import loudness_gap, make_vod

DURATION = 96.0
SPANS = [Span(start=start, end=min(start + 16.0, DURATION)) for start in range(0, 96, 16)]
# Small reads for a small file: a 16 s span here is a few of them, as a 5-minute span of a real
# recording is a few dozen of the 2 MiB reads the stages use.
CHUNK_BYTES = 16 * 1024


@pytest.fixture(scope="module")
def storage(emulator_hosts: dict[str, str]) -> Iterator[Storage]:
    """A bucket of its own on the Storage emulator, emptied and removed afterwards."""
    storage = Storage(Settings(bucket=f"spans-{uuid.uuid4().hex[:10]}"))
    storage.ensure_bucket()
    yield storage
    for blob in storage.bucket.list_blobs():
        blob.delete()
    storage.bucket.delete()


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_vod(
        tmp_path_factory.mktemp("vod") / "vod.mp4",
        duration_seconds=DURATION,
        cuts_at=[16.0, 40.0, 63.9],
        bursts_at=[31.5, 48.0],
    )


@pytest.fixture(scope="module")
def uri(storage: Storage, recording: Path) -> str:
    return storage.upload_file(recording, "jobs/spans/source.mp4", "video/mp4").uri


def reader(storage: Storage, uri: str) -> RangedReader:
    return storage.open_ranged(uri, chunk_bytes=CHUNK_BYTES)


def test_a_span_in_the_middle_reads_a_fraction_of_the_file(
    storage: Storage, uri: str, recording: Path
) -> None:
    span = SPANS[3]
    loudness_reader, scenes_reader = reader(storage, uri), reader(storage, uri)

    loudness = measure_loudness(loudness_reader, span)
    samples = sample_scenes(scenes_reader, span)

    assert loudness == measure_loudness(recording, span)
    assert samples == sample_scenes(recording, span)
    size = recording.stat().st_size
    assert loudness_reader.size == size
    assert 0 < loudness_reader.bytes_read < 0.4 * size
    assert 0 < scenes_reader.bytes_read < 0.4 * size


def test_spans_read_through_storage_add_up_to_the_whole_analysis(
    storage: Storage, uri: str, recording: Path
) -> None:
    readers = [reader(storage, uri) for _ in SPANS]

    loudness = [measure_loudness(r, span) for r, span in zip(readers, SPANS, strict=True)]
    whole = analyse_audio(recording)
    audio = combine_loudness(list(loudness), whole.duration_seconds)
    samples = [sample_scenes(reader(storage, uri), span) for span in SPANS]
    scenes = combine_scenes(list(samples), DURATION)

    assert loudness_gap(audio.momentary_lufs, whole.momentary_lufs) <= 0.1
    assert audio.integrated_lufs == whole.integrated_lufs
    assert (audio.peaks, audio.silences) == (whole.peaks, whole.silences)
    assert [peak.time for peak in audio.peaks] == pytest.approx([31.5, 48.0], abs=0.4)
    assert scenes == find_scene_cuts(recording)
    assert scenes.cuts == [16.0, 40.0, 63.9]
    # Each span reads its own stretch, plus the index and a lead-in: far from a file each.
    assert sum(r.bytes_read for r in readers) < 2 * recording.stat().st_size


def test_probe_and_thumbnails_read_through_storage_as_from_a_file(
    storage: Storage, uri: str, recording: Path
) -> None:
    source = reader(storage, uri)

    assert probe_media(source) == probe_media(recording)
    assert video_thumbnail(source, 40.0, 64) == video_thumbnail(recording, 40.0, 64)
    assert source.bytes_read < recording.stat().st_size


def test_the_default_reads_fetch_a_small_file_at_once(storage: Storage, uri: str) -> None:
    source = storage.open_ranged(uri)

    info = probe_media(source)

    assert info.duration_seconds == pytest.approx(DURATION)
    assert source.bytes_read == source.size


def test_an_object_replaced_since_it_was_planned_is_refused(
    storage: Storage, recording: Path, tmp_path: Path
) -> None:
    uri = storage.upload_file(recording, "jobs/spans/replaced.mp4", "video/mp4").uri
    planned = storage.open_ranged(uri).generation
    other = make_vod(tmp_path / "other.mp4", duration_seconds=4.0, cuts_at=[])
    storage.upload_file(other, "jobs/spans/replaced.mp4", "video/mp4")

    with pytest.raises(SourceChanged) as refused:
        storage.open_ranged(uri, generation=planned)

    assert refused.value.code == "SOURCE_CHANGED"
    assert storage.open_ranged(uri).size == other.stat().st_size
