"""The Speech-to-Text v2 engine up to the wire: the request it sends (built with the real client
library's types) and its reading of a response in the documented BatchRecognize shape. These
machines reach no Google service, so no request is ever sent from here."""

from __future__ import annotations

import io
import json
import wave
from typing import Any

import numpy as np
import pytest
from google.api_core import operation as api_operation
from google.api_core.exceptions import PermissionDenied
from google.cloud.speech_v2.types import cloud_speech
from google.longrunning import operations_pb2

from jobs.cloud.storage import Storage
from jobs.contract.settings import Settings
from pipelines.media.transcription import google
from pipelines.media.transcription.engine import Speech
from pipelines.media.transcription.google import batch_request, parse_response, wav_bytes
from processor.stage import JobCancelled, TransientError

URI = "gs://longrun-test-longrun/speech/0123abcd.wav"

# The REST shape of an operation's response (BatchRecognizeResponse), inline results of one file
# as the v2 reference documents them: durations as "<seconds>s" strings, a result per stretch
# of speech, the best alternative first, and a result without alternatives for a stretch with
# none. Times are seconds from the start of the uploaded file.
RESPONSE = {
    "results": {
        URI: {
            "inlineResult": {
                "transcript": {
                    "results": [
                        {
                            "alternatives": [
                                {
                                    "transcript": "He was not an ill-disposed young man.",
                                    "confidence": 0.93,
                                    "words": [
                                        {
                                            "word": "He",
                                            "startOffset": "1.200s",
                                            "endOffset": "1.400s",
                                            "confidence": 0.97,
                                        },
                                        {
                                            "word": "was",
                                            "startOffset": "1.400s",
                                            "endOffset": "1.640s",
                                            "confidence": 0.95,
                                        },
                                        {
                                            "word": "not",
                                            "startOffset": "1.640s",
                                            "endOffset": "2.100s",
                                            "confidence": 0.91,
                                        },
                                    ],
                                }
                            ],
                            "resultEndOffset": "2.300s",
                            "languageCode": "en-us",
                        },
                        {"resultEndOffset": "4s", "languageCode": "en-us"},
                        {
                            "alternatives": [
                                {
                                    "transcript": "Amiable.",
                                    "words": [
                                        {
                                            "word": "Amiable.",
                                            "startOffset": "5s",
                                            "endOffset": "5.6s",
                                        }
                                    ],
                                }
                            ],
                            "resultEndOffset": "5.600s",
                            "languageCode": "en-us",
                        },
                    ]
                }
            },
            "metadata": {"totalBilledDuration": "6s"},
        }
    },
    "totalBilledDuration": "6s",
}


def settings(**values: str) -> Settings:
    return Settings(**values)  # type: ignore[arg-type]


def test_the_request_asks_for_timed_scored_words_of_one_object_returned_inline() -> None:
    config = settings(
        speech_location="europe-west4", speech_model="chirp_2", speech_language="en-GB"
    )

    request = batch_request(config, URI)

    sent = json.loads(cloud_speech.BatchRecognizeRequest.to_json(request))
    assert sent["recognizer"] == (
        f"projects/{config.project_id}/locations/europe-west4/recognizers/_"
    )
    assert sent["files"] == [{"uri": URI}]
    assert sent["config"]["model"] == "chirp_2"
    assert sent["config"]["languageCodes"] == ["en-GB"]
    assert "autoDecodingConfig" in sent["config"]
    features = sent["config"]["features"]
    assert features["enableWordTimeOffsets"] is True
    assert features["enableWordConfidence"] is True
    assert "inlineResponseConfig" in sent["recognitionOutputConfig"]


def test_a_response_gives_its_words_timed_from_the_start_of_the_span() -> None:
    response = cloud_speech.BatchRecognizeResponse.from_json(json.dumps(RESPONSE))

    words = parse_response(response, URI, offset=300.0)

    assert [w.text for w in words] == ["He", "was", "not", "Amiable."]
    assert (words[0].start, words[0].end) == (301.2, 301.4)
    assert words[3].start == 305.0
    assert words[0].confidence == pytest.approx(0.97)
    assert words[3].confidence == 0.0  # a word the recogniser gave no confidence


def test_a_file_that_failed_or_is_missing_from_the_response_is_worth_another_attempt() -> None:
    failed = {"results": {URI: {"error": {"code": 13, "message": "internal"}}}}
    response = cloud_speech.BatchRecognizeResponse.from_json(json.dumps(failed))

    with pytest.raises(TransientError, match="internal"):
        parse_response(response, URI, offset=0.0)
    with pytest.raises(TransientError, match="no result"):
        parse_response(response, "gs://elsewhere/x.wav", offset=0.0)


def test_the_uploaded_sound_is_a_16_bit_mono_wav_of_the_span() -> None:
    samples = (np.sin(np.arange(16000) / 5) * 8000).astype(np.int16)

    data = wav_bytes(Speech(samples=samples, sample_rate=16000, start=42.0))

    with wave.open(io.BytesIO(data)) as read:
        assert (read.getnchannels(), read.getsampwidth(), read.getframerate()) == (1, 2, 16000)
        assert np.array_equal(np.frombuffer(read.readframes(16000), dtype=np.int16), samples)


def test_a_cancel_stops_the_item_even_when_speech_to_text_refuses_to_cancel_its_operation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The processor's role (roles/speech.client) may not cancel operations: the refusal must
    # not hide the job's cancel, or the item would fail as a bug instead of stopping.
    monkeypatch.setattr(google, "POLL_SECONDS", 0.0)
    asked_to_cancel: list[bool] = []

    def refuse_cancel() -> None:
        asked_to_cancel.append(True)
        raise PermissionDenied("Permission 'speech.operations.cancel' denied")

    running = api_operation.Operation(
        operations_pb2.Operation(name="operations/123", done=False),
        refresh=lambda: operations_pb2.Operation(name="operations/123", done=False),
        cancel=refuse_cancel,
        result_type=cloud_speech.BatchRecognizeResponse,
        metadata_type=cloud_speech.OperationMetadata,
    )
    polls: list[float] = []

    def progress(fraction: float) -> None:
        polls.append(fraction)
        if len(polls) == 2:
            raise JobCancelled("job-1")

    with pytest.raises(JobCancelled):
        google._wait(running, progress)
    assert asked_to_cancel == [True]


class _SpeechToTextRecorded:
    """Speech-to-Text as far as these machines can know it: the request it is sent is kept, and
    its operation ends at once with the documented response shape (RESPONSE) for the object
    the request names. Only the client is replaced; the upload goes to the Storage emulator."""

    def __init__(self, *_args: object, **_kwargs: object) -> None:
        self.requests: list[cloud_speech.BatchRecognizeRequest] = []

    def batch_recognize(self, request: cloud_speech.BatchRecognizeRequest) -> Any:
        self.requests.append(request)
        uri = request.files[0].uri
        shaped = json.loads(json.dumps(RESPONSE).replace(URI, uri))
        response = cloud_speech.BatchRecognizeResponse.from_json(json.dumps(shaped))
        done = operations_pb2.Operation(name="operations/1", done=True)
        done.response.Pack(cloud_speech.BatchRecognizeResponse.pb(response))
        return api_operation.Operation(
            done,
            refresh=lambda: done,
            cancel=lambda: None,
            result_type=cloud_speech.BatchRecognizeResponse,
            metadata_type=cloud_speech.OperationMetadata,
        )


def test_what_google_bills_for_a_piece_is_its_cost_at_the_configured_rate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(google, "SpeechClient", _SpeechToTextRecorded)
    config = settings(speech_usd_per_minute="0.024")
    Storage(config).ensure_bucket()
    engine = google.GoogleSpeechEngine(config)
    samples = np.zeros(16000 * 7, dtype=np.int16)  # 7 s sent; the response bills 6 s

    heard = engine.transcribe(Speech(samples=samples, sample_rate=16000, start=60.0), _ignore)

    assert [w.text for w in heard.words] == ["He", "was", "not", "Amiable."]
    assert heard.words[0].start == 61.2
    assert heard.billed_usd == pytest.approx(6 / 60 * 0.024)
    uploaded = engine._client.requests[0].files[0].uri
    assert Storage(config).stat(uploaded) is None, "the sound sent is deleted afterwards"


def test_a_response_without_a_billed_duration_is_charged_for_the_sound_sent() -> None:
    unbilled = {key: value for key, value in RESPONSE.items() if key != "totalBilledDuration"}
    response = cloud_speech.BatchRecognizeResponse.from_json(json.dumps(unbilled))
    speech = Speech(samples=np.zeros(16000 * 90, dtype=np.int16), sample_rate=16000, start=0.0)

    assert google.billed_seconds(response, speech) == 90.0


def _ignore(_fraction: float) -> None:
    return None
