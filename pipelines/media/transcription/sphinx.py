"""The embedded engine: CMU PocketSphinx with the US English acoustic model, dictionary and
language model that its PyPI wheel ships, so it transcribes offline on a CPU with nothing
downloaded at run time (`make dev` and CI transcribe for real).

It decodes utterance by utterance (`utterances.find_utterances`): silence is never decoded, and
each utterance is one short decode between progress calls. A word's confidence is its posterior
probability in the decoder's word lattice. PocketSphinx is far less accurate than a neural
recogniser (the README gives its word error rate on read speech), which is why production runs
the Google engine; it is here because it is real, small and free.
"""

from __future__ import annotations

import queue
import re
from collections.abc import Iterator
from contextlib import contextmanager

from pocketsphinx import Decoder

from jobs.contract.settings import Settings
from pipelines.media.transcription.engine import Progress, Speech
from pipelines.media.transcription.models import Word
from pipelines.media.transcription.utterances import find_utterances

SAMPLE_RATE = 16000
# "read(2)" is the dictionary's second pronunciation of "read": the word is "read".
_VARIANT = re.compile(r"\(\d+\)$")


class PocketsphinxEngine:
    """PocketSphinx's en-US models, one decoder per worker thread that uses it at once."""

    name = "pocketsphinx"
    language = "en-US"
    sample_rate = SAMPLE_RATE

    def __init__(self, _settings: Settings) -> None:
        # A decoder holds a search in progress, so threads never share one; each loads the
        # models (about 0.4 s and 60 MB), so idle ones are kept for the next span.
        self._idle: queue.SimpleQueue[Decoder] = queue.SimpleQueue()

    def transcribe(self, speech: Speech, progress: Progress) -> list[Word]:
        """The words of each utterance in `speech`, decoded one utterance at a time."""
        if speech.sample_rate != SAMPLE_RATE:
            raise ValueError(f"PocketSphinx takes {SAMPLE_RATE} Hz sound, not {speech.sample_rate}")
        utterances = find_utterances(speech.samples, SAMPLE_RATE)
        words: list[Word] = []
        with self._decoder() as decoder:
            for first, last in utterances:
                progress(first / max(1, len(speech.samples)))
                offset = speech.start + first / SAMPLE_RATE
                words += _decode(decoder, speech.samples[first:last].tobytes(), offset)
        progress(1.0)
        return words

    @contextmanager
    def _decoder(self) -> Iterator[Decoder]:
        try:
            decoder = self._idle.get_nowait()
        except queue.Empty:
            decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")
        yield decoder
        self._idle.put(decoder)


def _decode(decoder: Decoder, pcm: bytes, offset: float) -> list[Word]:
    """The words of one utterance, timed from `offset` seconds."""
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)  # the whole utterance: its own mean normalisation
    decoder.end_utt()
    if decoder.hyp() is None:  # also computes the lattice posteriors `seg()` reports
        return []
    frame_rate = float(decoder.config["frate"])
    words = []
    for segment in decoder.seg():
        text = _VARIANT.sub("", segment.word)
        if not text or text[0] in "<[+":  # <s>, <sil>, [NOISE], ++GARBAGE++: not words
            continue
        words.append(
            Word(
                text=text,
                start=round(offset + segment.start_frame / frame_rate, 3),
                end=round(offset + (segment.end_frame + 1) / frame_rate, 3),
                confidence=round(min(1.0, max(0.0, float(segment.prob))), 3),
            )
        )
    return words
