"""Media that lies about its length: a few kilobytes whose timestamps claim years.

Every stage sizes some grid by a recording's length, so each must refuse such a file with a
permanent error and a stable code, in bounded memory. Stages run in a child process under an
address-space limit, so even a regression fails the test instead of exhausting the machine.
"""

from __future__ import annotations

import io
import json
import resource
import subprocess
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
from PIL import Image

from cli.uploading import upload_file
from deploy.local.ephemeral import Stack
from jobs.contract.errors import PermanentError
from jobs.contract.models import JobStatus
from pipelines.media.audio import analyse_audio
from pipelines.media.chat import analyse_chat
from pipelines.media.clips import cut_clip
from pipelines.media.highlights import score_highlights
from pipelines.media.models import AudioAnalysis, Span
from pipelines.media.probe import probe_media
from pipelines.media.scenes import find_scene_cuts
from pipelines.media.spec import MediaOptions
from pipelines.media.thumbnails import video_thumbnail
from samples.media import make_audio
from tests.support import JobsWatcher, submit_media

LIES = [1e8, 1e9]
# What a stage may take, whatever the file claims; the child cannot take more than the cap.
MAX_RSS_BYTES = 500 * 1024**2
ADDRESS_SPACE_CAP = 3 * 1024**3
RATE = 8000
SAMPLES_PER_PACKET = 800


def lying_audio(path: Path, *, jump_to: float, honest_packets: int = 1) -> Path:
    """PCM in Matroska: `honest_packets` packets of 0.1 s, then the rest stamped from `jump_to`."""
    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("pcm_s16le", rate=RATE)
        stream.layout = "mono"
        packets = []
        for index in range(honest_packets + 3):
            samples = np.zeros((1, SAMPLES_PER_PACKET), np.int16)
            frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
            frame.sample_rate, frame.pts = RATE, index * SAMPLES_PER_PACKET
            packets += stream.encode(frame)
        for index, packet in enumerate(packets):
            if index >= honest_packets:
                lie = round(jump_to * RATE) + index * SAMPLES_PER_PACKET
                packet.pts = packet.dts = lie
            container.mux(packet)
    return path


def lying_video(path: Path, *, jump_to: float) -> Path:
    """Motion JPEG in Matroska: one frame at 0 s, the next ones stamped from `jump_to`."""
    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("mjpeg", rate=5)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        stream.codec_context.time_base = Fraction(1, 5)
        for index in range(4):
            picture = np.full((48, 64, 3), 40 * index, np.uint8)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = index if index == 0 else round(jump_to * 5) + index
            frame.time_base = Fraction(1, 5)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def huge_picture(path: Path, *, width: int, height: int) -> Path:
    """Motion JPEG whose every frame is a flat grey picture of `width` x `height`: the pixels
    of a gigabyte of frames, in a few megabytes."""
    encoded = io.BytesIO()
    Image.new("L", (width, height), 90).save(encoded, format="JPEG", quality=10)
    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("mjpeg", rate=5)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        for index in range(10):
            packet = av.Packet(encoded.getvalue())
            packet.stream, packet.pts, packet.dts = stream, index, index
            packet.time_base, packet.is_keyframe = Fraction(1, 5), True
            container.mux(packet)
    return path


def lying_chat(path: Path) -> Path:
    lines = [{"timestamp_seconds": t, "user": "u", "text": "hi"} for t in (1.0, 2.0, 1e12)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _audio_analysis() -> AudioAnalysis:
    return AudioAnalysis(
        window_seconds=0.4,
        duration_seconds=2.0,
        momentary_lufs=[-30.0] * 5,
        short_term_lufs=[-30.0] * 5,
    )


# Each stage as the processor calls it, by the length or the file a lying probe would give it.
STAGES: dict[str, Callable[[Path, float], object]] = {
    "probe": lambda media, _claimed: probe_media(media),
    "audio": lambda media, _claimed: analyse_audio(media),
    "scenes": lambda media, _claimed: find_scene_cuts(media),
    "thumbnails": lambda media, _claimed: video_thumbnail(media, 0.5, 320),
    "clips": lambda media, _claimed: cut_clip(
        media, Span(start=0.5, end=1.5), media.parent, "clip", progress=lambda _done: None
    ),
    "chat": lambda media, claimed: analyse_chat(
        lying_chat(media.with_suffix(".jsonl")), duration_seconds=claimed
    ),
    "highlights": lambda _media, claimed: score_highlights(
        duration_seconds=claimed,
        audio=_audio_analysis(),
        scenes=None,
        chat=None,
        options=MediaOptions(),
    ),
}


def child(stage: str, media: str, claimed: str) -> None:
    """Run one stage in this (child) process and print its outcome and peak memory as JSON."""
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_CAP, ADDRESS_SPACE_CAP))
    outcome: dict[str, Any] = {"code": None}
    try:
        STAGES[stage](Path(media), float(claimed))
    except PermanentError as error:
        outcome = {"code": error.code, "message": str(error)}
    except MemoryError:
        outcome = {"code": "MemoryError"}
    outcome["max_rss_bytes"] = peak_rss_bytes()
    sys.stdout.write(json.dumps(outcome) + "\n")


def peak_rss_bytes() -> int:
    """This process's peak resident memory since it started its program. Not ru_maxrss: Linux
    carries that over from the forked copy of the parent, whose size says nothing here."""
    status = Path("/proc/self/status").read_text()
    kilobytes = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(kilobytes) * 1024


def run_in_child(stage: str, media: Path, claimed: float) -> dict[str, Any]:
    command = f"from {__name__} import child; child(*{[stage, str(media), repr(claimed)]!r})"
    root = Path(__file__).parents[2]
    done = subprocess.run(
        [sys.executable, "-c", command], cwd=root, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    outcome: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return outcome


@pytest.fixture(params=LIES, ids=lambda lie: f"t={lie:.0e}s")
def lie(request: pytest.FixtureRequest) -> float:
    claimed: float = request.param
    return claimed


@pytest.mark.parametrize(
    ("stage", "code"),
    [
        ("probe", "UNSUPPORTED_MEDIA"),
        ("audio", "MEDIA_TOO_LONG"),
        ("chat", "MEDIA_TOO_LONG"),
        ("highlights", "MEDIA_TOO_LONG"),
    ],
)
def test_each_stage_refuses_audio_that_jumps_to_years_in_bounded_memory(
    tmp_path: Path, lie: float, stage: str, code: str
) -> None:
    media = lying_audio(tmp_path / "lie.mkv", jump_to=lie)

    outcome = run_in_child(stage, media, probe_seconds(media))

    assert outcome["code"] == code, outcome
    assert outcome["max_rss_bytes"] < MAX_RSS_BYTES


def probe_seconds(media: Path) -> float:
    """The length the file's headers and timestamps claim, as FFmpeg reads them."""
    with av.open(str(media)) as container:
        assert container.duration is not None
        return float(container.duration / av.time_base)


def test_scenes_refuse_video_that_jumps_to_years_in_bounded_memory(
    tmp_path: Path, lie: float
) -> None:
    media = lying_video(tmp_path / "lie.mkv", jump_to=lie)

    outcome = run_in_child("scenes", media, probe_seconds(media))

    assert outcome["code"] == "MEDIA_TOO_LONG", outcome
    assert outcome["max_rss_bytes"] < MAX_RSS_BYTES


def test_a_jump_of_hours_between_packets_is_refused_even_when_the_bytes_could_hold_it(
    tmp_path: Path,
) -> None:
    # 50 honest packets (5 s of 16-bit sound, 80 kB) could hold 2 h at the thinnest bitrate.
    media = lying_audio(tmp_path / "gap.mkv", jump_to=2 * 3600.0, honest_packets=50)

    with pytest.raises(PermanentError) as refused:
        analyse_audio(media)

    assert refused.value.code == "UNSUPPORTED_MEDIA"
    assert "jump" in str(refused.value)


def test_a_recording_over_the_configured_maximum_is_media_too_long(tmp_path: Path) -> None:
    media = lying_audio(tmp_path / "honest.mkv", jump_to=0.0, honest_packets=50)

    with pytest.raises(PermanentError) as refused:
        probe_media(media, max_seconds=2.0)

    assert refused.value.code == "MEDIA_TOO_LONG"
    assert probe_media(media, max_seconds=10.0).duration_seconds == pytest.approx(5.3, abs=0.1)


@pytest.fixture(scope="module")
def giant_picture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return huge_picture(tmp_path_factory.mktemp("giant") / "giant.mkv", width=16000, height=12000)


@pytest.mark.parametrize("stage", ["probe", "scenes", "thumbnails", "clips"])
def test_a_picture_beyond_8k_is_refused_before_it_is_decoded(
    giant_picture: Path, stage: str
) -> None:
    outcome = run_in_child(stage, giant_picture, 2.0)

    assert outcome["code"] == "UNSUPPORTED_MEDIA", outcome
    assert outcome["max_rss_bytes"] < MAX_RSS_BYTES


def test_an_8k_picture_is_still_read(tmp_path: Path) -> None:
    media = huge_picture(tmp_path / "8k.mkv", width=7680, height=4320)

    info = probe_media(media)

    assert info.video is not None
    assert (info.video.width, info.video.height) == (7680, 4320)


def test_a_lying_file_fails_its_job_at_once_with_a_permanent_error(
    tmp_path: Path, stack: Stack, api: httpx.Client, jobs_watcher: JobsWatcher
) -> None:
    media = lying_audio(tmp_path / "lie.mkv", jump_to=1e9)
    source = upload_file(api, media, "video/x-matroska")

    final = jobs_watcher.wait_terminal(submit_media(api, source=source), timeout=180)

    assert final.status == JobStatus.FAILED
    assert final.error is not None
    assert (final.error.code, final.error.stage, final.error.retryable) == (
        "UNSUPPORTED_MEDIA",
        "probe",
        False,
    )
    probe = next(stage for stage in final.stages if stage.name == "probe")
    assert probe.attempts == 1


def test_a_chat_log_that_breaks_its_parser_fails_its_job_once_with_invalid_chat(
    tmp_path: Path, stack: Stack, api: httpx.Client, jobs_watcher: JobsWatcher
) -> None:
    make_audio(tmp_path / "talk.wav", duration_seconds=3.0, bursts_at=[1.0])
    (tmp_path / "chat.csv").write_text('timestamp_seconds,user,text\n1,ann,"' + "x" * 200_000)
    source = upload_file(api, tmp_path / "talk.wav", "audio/wav")
    chat = upload_file(api, tmp_path / "chat.csv", "text/csv")

    final = jobs_watcher.wait_terminal(submit_media(api, source=source, chat=chat), timeout=180)

    assert final.status == JobStatus.FAILED
    assert final.error is not None
    assert (final.error.code, final.error.stage, final.error.retryable) == (
        "INVALID_CHAT",
        "chat",
        False,
    )
    assert "line 2" in final.error.message
    assert next(stage for stage in final.stages if stage.name == "chat").attempts == 1
