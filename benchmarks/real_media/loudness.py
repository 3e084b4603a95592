"""Loudness on real recordings against pyloudnorm and ffmpeg's ebur128, in one run.

The recordings come from Debian packages, fetched by name (`samples.packages`): game music
(Pushover's themes, stereo Ogg Vorbis), speech (LibriVox read by a volunteer, mono 16 kHz WAV,
from pocketsphinx-testdata; a game's spoken dialogue, stereo Vorbis, from fillets-ng-data-nl),
a desktop sound (sound-theme-freedesktop) and a game's effects (tecnoballz-data, 8-bit mono at
an odd rate). No Debian package found here ships a 5.1 recording, so one is assembled from them
as a film's track is laid out: dialogue in the centre, music in front left and right, other music
in the surrounds, the music's bass in the LFE channel, encoded as 5.1 AAC.

Per file: integrated loudness and loudness range from longrun (`analyse_audio`), from pyloudnorm
(on the same samples decoded with PyAV; 5.1 without its LFE, which pyloudnorm does not take),
with its default filter (an approximation of K-weighting) and with the standard's own design
(`filter_class="DeMan"`), and from ffmpeg's `ebur128` filter; the CPU seconds each takes from
the file to its integrated loudness (longrun's also gives the series and the loudness range;
the best of three, decoding included, ffmpeg's counted from its process); the loud moments and
silences longrun finds.

    .venv/bin/python -m benchmarks.real_media.loudness [WORK_DIR]
"""

from __future__ import annotations

import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import pyloudnorm
from scipy import signal

from pipelines.media.audio import analyse_audio
from samples.packages import PackageUnavailable, debian_package
from samples.speech import join_recordings, librivox

Samples = npt.NDArray[np.float64]
REPEATS = 3
PUSHOVER = "usr/share/pushover/themes"
FILLETS = "usr/share/games/fillets-ng/sound"
# pyloudnorm takes up to five channels in the order L, R, C, Ls, Rs.
_PYLOUDNORM_ORDER = ("FL", "FR", "FC", "BL", "BR")
_SURROUND_NAMES = {"SL": "BL", "SR": "BR"}


@dataclass(frozen=True)
class Recording:
    """One real recording: what it is, and where it was unpacked."""

    name: str
    kind: str
    path: Path


@dataclass
class Measured:
    """One recording measured three ways."""

    name: str
    kind: str
    channels: int
    seconds: float
    longrun_lufs: float | None
    pyloudnorm_lufs: float
    pyloudnorm_standard_lufs: float
    ffmpeg_lufs: float | None
    longrun_lra: float | None
    pyloudnorm_lra: float | None
    ffmpeg_lra: float | None
    longrun_cpu: float
    pyloudnorm_cpu: float
    ffmpeg_cpu: float | None
    sample_peak_dbfs: float
    loud_moments: int
    silences: int

    @property
    def lufs_difference(self) -> float:
        return abs((self.longrun_lufs or -70.0) - self.pyloudnorm_lufs)

    @property
    def standard_difference(self) -> float:
        return abs((self.longrun_lufs or -70.0) - self.pyloudnorm_standard_lufs)


def recordings(work: Path) -> list[Recording]:
    """The real recordings, fetched into `work` unless they are there already."""
    found: list[Recording] = []
    pushover = debian_package("pushover-data", work) / PUSHOVER
    for theme in ("electro", "greek", "space"):
        found.append(Recording(f"pushover {theme}", "game music", pushover / f"{theme}.ogg"))
    joined = work / "librivox.wav"
    if not joined.exists():
        join_recordings(librivox(work), joined)
    found.append(Recording("LibriVox, 5 utterances", "speech", joined))
    fillets = debian_package("fillets-ng-data-nl", work) / FILLETS
    dialogue = fillets / "computer/nl/poc-v-vyresil.ogg"
    found.append(Recording("fillets dialogue", "speech", dialogue))
    sounds = debian_package("sound-theme-freedesktop", work) / "usr/share/sounds/freedesktop"
    found.append(Recording("desktop alarm", "effects", sounds / "stereo/alarm-clock-elapsed.oga"))
    effects = debian_package("tecnoballz-data", work) / "usr/share/games/tecnoballz/sounds"
    found.append(Recording("tecnoballz explosion", "game effects", effects / "rexplo_big.wav"))
    surround = work / "assembled-5.1.m4a"
    if not surround.exists():
        assemble_surround(surround, pushover / "space.ogg", pushover / "electro.ogg", joined)
    found.append(Recording("assembled 5.1 (AAC)", "film-like 5.1", surround))
    return found


def decode(path: Path) -> tuple[Samples, int, list[str]]:
    """The first audio stream as (channels, instants) floats, its rate and channel names."""
    chunks: list[Samples] = []
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        names = [channel.name for channel in stream.layout.channels]
        for frame in container.decode(stream):
            values = frame.to_ndarray()
            if not frame.format.is_planar:
                values = values.reshape(-1, frame.layout.nb_channels).T
            chunks.append(_full_scale(values, frame.format.name))
        return np.concatenate(chunks, axis=1), stream.sample_rate, names


def _full_scale(values: npt.NDArray[Any], format_name: str) -> Samples:
    kind = format_name.removesuffix("p")
    scale = {"u8": 128.0, "s16": 32768.0, "s32": 2147483648.0}.get(kind, 1.0)
    zero = 128.0 if kind == "u8" else 0.0
    return (values.astype(np.float64) - zero) / scale


def _pyloudnorm_input(samples: Samples, names: list[str]) -> Samples:
    """Samples as pyloudnorm takes them: (instants, channels), at most L, R, C, Ls, Rs."""
    if samples.shape[0] <= 2:
        return samples.T
    names = [_SURROUND_NAMES.get(name, name) for name in names]
    keep = [names.index(name) for name in _PYLOUDNORM_ORDER if name in names]
    return samples[keep].T


def assemble_surround(path: Path, music: Path, other: Path, speech: Path) -> None:
    """A 5.1 AAC track laid out as a film's: music front, other music behind, speech centre."""
    front, rate, _ = decode(music)
    behind, _, _ = decode(other)
    voice, voice_rate, _ = decode(speech)
    voice = signal.resample_poly(voice[0], rate, voice_rate)
    length = min(front.shape[1], behind.shape[1], 90 * rate)
    centre = np.zeros(length)
    for start in range(0, length - voice.size, voice.size + 5 * rate):  # dialogue, then a pause
        centre[start : start + voice.size] = voice
    bass = signal.sosfilt(signal.butter(4, 120, fs=rate, output="sos"), front[:, :length].mean(0))
    channels = [front[0, :length], front[1, :length], centre, bass, behind[0, :length] * 0.5]
    channels.append(behind[1, :length] * 0.5)
    write_aac(path, np.stack(channels).astype(np.float32), rate, "5.1")


def write_aac(path: Path, samples: npt.NDArray[np.float32], rate: int, layout: str) -> None:
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = layout
        stream.bit_rate = 384_000
        for start in range(0, samples.shape[1], 1024):
            piece = np.ascontiguousarray(samples[:, start : start + 1024])
            frame = av.AudioFrame.from_ndarray(piece, format="fltp", layout=layout)
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def best_cpu(work: Callable[[], Any]) -> tuple[float, Any]:
    """The least CPU time of REPEATS runs of `work`, and what it gave."""
    best, result = float("inf"), None
    for _ in range(REPEATS):
        start = time.process_time()
        result = work()
        best = min(best, time.process_time() - start)
    return best, result


def pyloudnorm_integrated(path: Path, filter_class: str = "K-weighting") -> float:
    """pyloudnorm's integrated loudness of the file, decoded with PyAV (what is timed)."""
    samples, rate, names = decode(path)
    meter = pyloudnorm.Meter(rate, filter_class=filter_class)
    return float(meter.integrated_loudness(_pyloudnorm_input(samples, names)))


def pyloudnorm_range(path: Path) -> float | None:
    samples, rate, names = decode(path)
    try:
        return float(pyloudnorm.Meter(rate).loudness_range(_pyloudnorm_input(samples, names)))
    except ValueError:  # shorter than a short-term block (3 s)
        return None


def ffmpeg_measure(path: Path) -> tuple[float, float, float] | None:
    """ffmpeg's integrated loudness, LRA and the CPU seconds its process took (best of three)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return None
    best, lufs, lra = float("inf"), 0.0, 0.0
    for _ in range(REPEATS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        command = [ffmpeg, "-nostats", "-hide_banner", "-i", str(path)]
        command += ["-map", "0:a:0", "-filter:a", "ebur128", "-f", "null", "-"]
        run = subprocess.run(command, capture_output=True, text=True, check=True, timeout=600)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        best = min(best, cpu)
        summary = run.stderr[run.stderr.rfind("Summary:") :]
        lufs = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))  # type: ignore[union-attr]
        lra = float(re.search(r"LRA:\s+(-?[\d.]+) LU", summary).group(1))  # type: ignore[union-attr]
    return lufs, lra, best


def measure(recording: Recording) -> Measured:
    longrun_cpu, analysis = best_cpu(lambda: analyse_audio(recording.path))
    pyloudnorm_cpu, reference = best_cpu(lambda: pyloudnorm_integrated(recording.path))
    standard = pyloudnorm_integrated(recording.path, "DeMan")
    reference_lra = pyloudnorm_range(recording.path)
    ffmpeg = ffmpeg_measure(recording.path)
    with av.open(str(recording.path)) as container:
        channels = container.streams.audio[0].channels
    return Measured(
        name=recording.name,
        kind=recording.kind,
        channels=channels,
        seconds=round(analysis.duration_seconds, 1),
        longrun_lufs=analysis.integrated_lufs,
        pyloudnorm_lufs=round(reference, 2),
        pyloudnorm_standard_lufs=round(standard, 2),
        ffmpeg_lufs=ffmpeg[0] if ffmpeg else None,
        longrun_lra=analysis.loudness_range_lu,
        pyloudnorm_lra=None if reference_lra is None else round(reference_lra, 2),
        ffmpeg_lra=ffmpeg[1] if ffmpeg else None,
        longrun_cpu=round(longrun_cpu, 3),
        pyloudnorm_cpu=round(pyloudnorm_cpu, 3),
        ffmpeg_cpu=round(ffmpeg[2], 3) if ffmpeg else None,
        sample_peak_dbfs=analysis.sample_peak_dbfs,
        loud_moments=len(analysis.peaks),
        silences=len(analysis.silences),
    )


def run(work: Path) -> dict[str, Any]:
    """Every recording measured; {"skipped": why} if the packages cannot be fetched."""
    try:
        found = recordings(work)
    except PackageUnavailable as error:
        return {"skipped": str(error)}
    measured = [measure(recording) for recording in found]
    rows = [
        asdict(m)
        | {
            "lufs_difference": round(m.lufs_difference, 3),
            "standard_difference": round(m.standard_difference, 3),
        }
        for m in measured
    ]
    longrun = sum(m.longrun_cpu for m in measured)
    return {
        "files": rows,
        "max_lufs_difference": max(m.lufs_difference for m in measured),
        "max_standard_difference": max(m.standard_difference for m in measured),
        "speed_vs_pyloudnorm": round(sum(m.pyloudnorm_cpu for m in measured) / longrun, 2),
        "speed_vs_ffmpeg": round(sum(m.ffmpeg_cpu or 0.0 for m in measured) / longrun, 2),
        "files_with_loud_moments": sum(m.loud_moments > 0 for m in measured),
    }


def _value(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:.2f}{unit}"


def markdown_rows(results: dict[str, Any]) -> list[str]:
    """A table: each file's loudness three ways, CPU seconds, and what longrun found in it."""
    if "skipped" in results:
        return [f"Loudness on real recordings skipped: {results['skipped']}"]
    lines = [
        "| recording | kind | ch | s | LUFS longrun / pyloudnorm / ffmpeg | Δ pyloudnorm "
        "(its default / BS.1770 filter) | LRA longrun / pyloudnorm / ffmpeg | "
        "CPU s longrun / pyloudnorm / ffmpeg | loud moments | silences |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in results["files"]:
        lines.append(
            f"| {f['name']} | {f['kind']} | {f['channels']} | {f['seconds']:.0f} | "
            f"{_value(f['longrun_lufs'])} / {_value(f['pyloudnorm_lufs'])} / "
            f"{_value(f['ffmpeg_lufs'])} | {f['lufs_difference']:.2f} / "
            f"{f['standard_difference']:.2f} | "
            f"{_value(f['longrun_lra'])} / {_value(f['pyloudnorm_lra'])} / "
            f"{_value(f['ffmpeg_lra'])} | {f['longrun_cpu']:.2f} / {f['pyloudnorm_cpu']:.2f} / "
            f"{_value(f['ffmpeg_cpu'])} | {f['loud_moments']} | {f['silences']} |"
        )
    lines.append(
        f"\nLargest integrated-loudness difference from pyloudnorm: "
        f"{results['max_lufs_difference']:.2f} LU with its default filter, "
        f"{results['max_standard_difference']:.2f} LU with the standard's (`DeMan`); "
        f"CPU time over all files: pyloudnorm "
        f"{results['speed_vs_pyloudnorm']}x longrun's, ffmpeg {results['speed_vs_ffmpeg']}x; "
        f"loud moments found in {results['files_with_loud_moments']} of "
        f"{len(results['files'])} files."
    )
    return lines


def main() -> None:
    work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="loudness-"))
    results = run(work)
    print(json.dumps(results, indent=1))
    print("\n".join(markdown_rows(results)))


if __name__ == "__main__":
    main()
