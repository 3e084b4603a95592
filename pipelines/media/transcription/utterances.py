"""Where the speech is: the stretches of a span's sound worth decoding, one utterance each.

A voice activity detector (PocketSphinx's, WebRTC's algorithm) marks 30 ms frames as speech or
not; runs of speech closer than a pause are one utterance, padded a little on each side (the
detector marks a word's first syllable late). Decoding only utterances skips silence and music
beds cheaply, and keeps each decode short: an utterance longer than MAX_SECONDS is split at its
quietest moment, so a worker thread reports progress (and can be stopped) every few seconds.
"""

from __future__ import annotations

import numpy as np
from pocketsphinx import Vad

from pipelines.media.transcription.engine import Pcm

# Speech runs closer than this are one utterance: a pause between sentences, not within them.
JOIN_SECONDS = 0.4
# Runs shorter than this are clicks, not words.
MIN_SECONDS = 0.15
# Each utterance starts and ends this much beyond its speech frames.
PAD_SECONDS = 0.3
# An utterance longer than this is split at its quietest 0.1 s after SPLIT_AFTER_SECONDS.
MAX_SECONDS = 12.0
SPLIT_AFTER_SECONDS = 6.0
_QUIET_WINDOW_SECONDS = 0.1
# The detector's aggressiveness (0-3): 1 keeps soft speech, and music mostly out.
_MODE = 1


def find_utterances(samples: Pcm, sample_rate: int) -> list[tuple[int, int]]:
    """[first, last) sample indices of each utterance in `samples`, in order."""
    vad = Vad(mode=_MODE, sample_rate=sample_rate)
    frame = vad.frame_bytes // 2
    count = len(samples) // frame
    speech = np.fromiter(
        (vad.is_speech(samples[i * frame : (i + 1) * frame].tobytes()) for i in range(count)),
        dtype=bool,
        count=count,
    )
    runs = _runs(speech, join=round(JOIN_SECONDS * sample_rate / frame))
    pad, least = round(PAD_SECONDS * sample_rate), round(MIN_SECONDS * sample_rate)
    padded = [
        (max(0, first * frame - pad), min(len(samples), last * frame + pad))
        for first, last in runs
        if (last - first) * frame >= least
    ]
    merged: list[tuple[int, int]] = []
    for first, last in padded:
        if merged and first <= merged[-1][1]:
            merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return [piece for first, last in merged for piece in _split(samples, sample_rate, first, last)]


def _runs(mask: np.ndarray, *, join: int) -> list[tuple[int, int]]:
    """[first, last) of each run of True, runs fewer than `join` frames apart joined."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    runs: list[tuple[int, int]] = []
    starts, ends = np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()
    for start, end in zip(starts, ends, strict=True):
        if runs and start - runs[-1][1] < join:
            runs[-1] = (runs[-1][0], end)
        else:
            runs.append((start, end))
    return runs


def _split(samples: Pcm, sample_rate: int, first: int, last: int) -> list[tuple[int, int]]:
    """The utterance [first, last) in pieces of at most MAX_SECONDS, each cut at the quietest
    window after SPLIT_AFTER_SECONDS (a pause, or at worst a stop consonant)."""
    longest, earliest = round(MAX_SECONDS * sample_rate), round(SPLIT_AFTER_SECONDS * sample_rate)
    window = round(_QUIET_WINDOW_SECONDS * sample_rate)
    pieces = []
    while last - first > longest:
        stretch = samples[first + earliest : first + longest].astype(np.float64)
        usable = len(stretch) // window * window
        energy = np.square(stretch[:usable]).reshape(-1, window).sum(axis=1)
        cut = first + earliest + int(np.argmin(energy)) * window + window // 2
        pieces.append((first, cut))
        first = cut
    pieces.append((first, last))
    return pieces
