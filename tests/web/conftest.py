"""The page's tests share the transcription tests' recorded speech (fetched once a session)."""

from tests.pipelines.conftest import spoken as spoken
