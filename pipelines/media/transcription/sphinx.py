"""The embedded engine: CMU PocketSphinx with the US English acoustic model, dictionary and
language model that its PyPI wheel ships, so it transcribes offline on a CPU with nothing
downloaded at run time (`make dev` and CI transcribe for real).

It decodes utterance by utterance (`utterances.find_utterances`): silence is never decoded, and
each utterance is one short decode between progress calls. A word's confidence is its posterior
probability in the decoder's word lattice. Decoding runs in a process of its own: PocketSphinx's
search holds Python's GIL for seconds at a time, which in the processor's own process would stall
its event loop (lease heartbeats, cancel checks, every other request) for as long.

PocketSphinx is far less accurate than a neural recogniser (the README gives its word error rate
on read speech), which is why production runs the Google engine; it is here because it is real,
small and free.
"""

from __future__ import annotations

import multiprocessing
import queue
import re
from collections.abc import Callable
from functools import partial
from multiprocessing.connection import Connection

from pocketsphinx import Decoder

from jobs.contract.settings import Settings
from pipelines.media.transcription.engine import Progress, Recognition, Speech
from pipelines.media.transcription.models import Word
from pipelines.media.transcription.utterances import find_utterances

SAMPLE_RATE = 16000
# "read(2)" is the dictionary's second pronunciation of "read": the word is "read".
_VARIANT = re.compile(r"\(\d+\)$")
# While a decode runs, progress is reported (and a cancel noticed) this often.
WAIT_SECONDS = 0.5
# The words of an utterance as they cross the pipe: text, start, end, confidence.
Timed = tuple[str, float, float, float]


class PocketsphinxEngine:
    """PocketSphinx's en-US models, one decoding process per worker thread that uses it at once."""

    name = "pocketsphinx"
    language = "en-US"
    sample_rate = SAMPLE_RATE

    def __init__(self, _settings: Settings) -> None:
        # Starting a decoding process loads the models (about 1 s and 100 MB), so idle ones are
        # kept for the next span.
        self._idle: queue.SimpleQueue[_Recogniser] = queue.SimpleQueue()

    def transcribe(self, speech: Speech, progress: Progress) -> Recognition:
        """The words of each utterance in `speech`, decoded one utterance at a time."""
        if speech.sample_rate != SAMPLE_RATE:
            raise ValueError(f"PocketSphinx takes {SAMPLE_RATE} Hz sound, not {speech.sample_rate}")
        utterances = find_utterances(speech.samples, SAMPLE_RATE)
        recogniser = self._take()
        words: list[Word] = []
        try:
            for first, last in utterances:
                done = first / max(1, len(speech.samples))
                progress(done)
                pcm = speech.samples[first:last].tobytes()
                offset = speech.start + first / SAMPLE_RATE
                timed = recogniser.decode(pcm, offset, partial(progress, done))
                words += [Word(text=t, start=a, end=b, confidence=c) for t, a, b, c in timed]
        except BaseException:
            recogniser.close()  # it may be mid-utterance: its search is abandoned with it
            raise
        self._idle.put(recogniser)
        progress(1.0)
        return Recognition(words)

    def _take(self) -> _Recogniser:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return _Recogniser()


class _Recogniser:
    """A decoder in a process of its own, decoding one utterance at a time on request."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")  # never fork a threaded server
        self._connection, theirs = context.Pipe()
        self._process = context.Process(target=_serve, args=(theirs,), daemon=True)
        self._process.start()
        theirs.close()

    def decode(self, pcm: bytes, offset: float, waiting: Callable[[], None]) -> list[Timed]:
        """The words of one utterance, calling `waiting()` while the decode runs."""
        self._connection.send((pcm, offset))
        while not self._connection.poll(WAIT_SECONDS):
            if not self._process.is_alive():
                raise RuntimeError(f"the recogniser exited with {self._process.exitcode}")
            waiting()
        words: list[Timed] = self._connection.recv()
        return words

    def close(self) -> None:
        self._process.kill()
        self._process.join(timeout=5)
        self._connection.close()


def _serve(connection: Connection) -> None:
    """The decoding process: load the models, then decode each utterance sent until the pipe
    closes."""
    decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")
    while True:
        try:
            pcm, offset = connection.recv()
        except EOFError:
            return
        words = _decode(decoder, pcm, offset)
        connection.send([(w.text, w.start, w.end, w.confidence) for w in words])


def _decode(decoder: Decoder, pcm: bytes, offset: float) -> list[Word]:
    """The words of one utterance, timed from `offset` seconds."""
    # The feature computation keeps state from earlier utterances, which nudged the lattice's
    # posteriors (a word's confidence) by a few thousandths: reset, every utterance decodes
    # alike whatever this process decoded before, so a resumed span hears what an uninterrupted
    # one did (0.1 ms).
    decoder.reinit_feat()
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
