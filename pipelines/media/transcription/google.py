"""The production engine: Google Cloud Speech-to-Text v2, batch recognition.

Each piece of a span's sound (about a minute, cut in a pause: `pieces.py`; a few per span keep
the item resumable) is written to the job bucket as a 16 kHz mono WAV and recognised by a
`BatchRecognize` operation (the way v2 takes sound longer than a minute) with word times and
word confidence, its results returned inline; the object is deleted afterwards (the bucket's
lifecycle rule deletes any a crash leaves). The operation is polled, so the item reports the
operation's own progress and stops, cancelling the operation, when the job is cancelled. What
Google bills for each operation (its response's billed duration, at `speech_usd_per_minute`) is
added to the job's cost, so a job's budget bounds its Speech-to-Text spend too.

Chosen over faster-whisper because it needs no model in the image and no GPU: Cloud Run's
processor stays a small CPU instance, and the recogniser scales with Google rather than with the
processor's memory. It was never run from this repository's machines (they reach no Google
service): the tests check the request it sends and its parsing of the response's documented shape.
"""

from __future__ import annotations

import io
import logging
import time
import uuid
import wave
from datetime import timedelta
from typing import Any

from google.api_core.client_options import ClientOptions
from google.api_core.exceptions import GoogleAPICallError
from google.cloud.speech_v2 import SpeechClient
from google.cloud.speech_v2.types import cloud_speech

from jobs.cloud.storage import Storage
from jobs.contract.settings import Settings
from pipelines.media.transcription.engine import Progress, Recognition, Speech
from pipelines.media.transcription.models import Word
from processor.stage import TransientError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
# How often a running operation is asked whether it is done.
POLL_SECONDS = 2.0
# Batch recognition of a few minutes usually takes under a minute; past this the attempt fails
# (and is retried) rather than hold its item's lease forever.
OPERATION_TIMEOUT_SECONDS = 420.0


class GoogleSpeechEngine:
    """Speech-to-Text v2 with the model, language and location the settings name."""

    name = "google"
    sample_rate = SAMPLE_RATE

    def __init__(self, settings: Settings) -> None:
        self.language = settings.speech_language
        self._settings = settings
        self._storage = Storage(settings)
        location = settings.speech_location
        endpoint = None if location == "global" else f"{location}-speech.googleapis.com"
        self._client = SpeechClient(client_options=ClientOptions(api_endpoint=endpoint))

    def transcribe(self, speech: Speech, progress: Progress) -> Recognition:
        """Upload the sound, recognise it in one batch operation, delete it."""
        name = f"speech/{uuid.uuid4().hex}.wav"
        uri = self._storage.upload_bytes(wav_bytes(speech), name, "audio/wav").uri
        try:
            operation = self._client.batch_recognize(request=batch_request(self._settings, uri))
            response = _wait(operation, progress)
        finally:
            self._storage.delete(uri)
        progress(1.0)
        words = parse_response(response, uri, offset=speech.start)
        minutes = billed_seconds(response, speech) / 60
        return Recognition(words, billed_usd=minutes * self._settings.speech_usd_per_minute)


def batch_request(settings: Settings, uri: str) -> cloud_speech.BatchRecognizeRequest:
    """The request for one WAV object: words timed and scored, results inline."""
    recognizer = (
        f"projects/{settings.project_id}/locations/{settings.speech_location}/recognizers/_"
    )
    config = cloud_speech.RecognitionConfig(
        auto_decoding_config=cloud_speech.AutoDetectDecodingConfig(),
        language_codes=[settings.speech_language],
        model=settings.speech_model,
        features=cloud_speech.RecognitionFeatures(
            enable_word_time_offsets=True,
            enable_word_confidence=True,
            enable_automatic_punctuation=True,
        ),
    )
    return cloud_speech.BatchRecognizeRequest(
        recognizer=recognizer,
        config=config,
        files=[cloud_speech.BatchRecognizeFileMetadata(uri=uri)],
        recognition_output_config=cloud_speech.RecognitionOutputConfig(
            inline_response_config=cloud_speech.InlineOutputConfig()
        ),
    )


def parse_response(
    response: cloud_speech.BatchRecognizeResponse, uri: str, *, offset: float
) -> list[Word]:
    """The words of the file's results, timed from `offset` seconds; a file error is raised."""
    result = response.results.get(uri)
    if result is None:
        raise TransientError(f"Speech-to-Text returned no result for {uri}.")
    if result.error and result.error.code:
        raise TransientError(f"Speech-to-Text failed: {result.error.message}")
    words = []
    for part in result.inline_result.transcript.results:
        if not part.alternatives:
            continue
        for info in part.alternatives[0].words:
            words.append(
                Word(
                    text=info.word,
                    start=round(offset + _seconds(info.start_offset), 3),
                    end=round(offset + _seconds(info.end_offset), 3),
                    confidence=round(min(1.0, max(0.0, info.confidence)), 3),
                )
            )
    return words


def billed_seconds(response: cloud_speech.BatchRecognizeResponse, speech: Speech) -> float:
    """The sound Google says it billed for or, if a response leaves that out, the length of the
    sound sent (which billing starts from)."""
    billed = _seconds(response.total_billed_duration)
    return billed if billed > 0 else speech.seconds


def wav_bytes(speech: Speech) -> bytes:
    """`speech` as a WAV file (16-bit mono PCM), which the recogniser decodes by itself."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(speech.sample_rate)
        out.writeframes(speech.samples.tobytes())
    return buffer.getvalue()


def _wait(operation: Any, progress: Progress) -> cloud_speech.BatchRecognizeResponse:
    """The operation's response, polling it; a stop (progress raises) cancels it."""
    deadline = time.monotonic() + OPERATION_TIMEOUT_SECONDS
    try:
        while not operation.done():
            if time.monotonic() > deadline:
                raise TransientError("Speech-to-Text took too long to answer.")
            metadata = getattr(operation, "metadata", None)
            progress(getattr(metadata, "progress_percent", 0) / 100)
            time.sleep(POLL_SECONDS)
    except BaseException:
        _cancel_quietly(operation)
        raise
    response: cloud_speech.BatchRecognizeResponse = operation.result()
    return response


def _cancel_quietly(operation: Any) -> None:
    """Ask Speech-to-Text to stop an operation whose words are no longer wanted. The role setup
    grants (roles/speech.client) may not cancel operations, so a refusal is expected: the
    operation then runs out on Google's side, and the stop that led here is what propagates."""
    try:
        operation.cancel()
    except GoogleAPICallError as refused:
        log.info("speech operation not cancelled", extra={"reason": str(refused)})


def _seconds(offset: timedelta | None) -> float:
    return 0.0 if offset is None else offset.total_seconds()
