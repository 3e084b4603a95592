"""gs:// sources: one strict parser, and a bucket allow-list that never includes longrun's own.

Every spelling here is one Cloud Storage (or its client, on the wire) could read as a different
bucket or object than the one compared; each must be refused, not reinterpreted.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from jobs.cloud.storage import parse_gs_uri as storage_parse_gs_uri
from jobs.contract.errors import PermanentError
from jobs.contract.settings import Settings
from jobs.contract.sources import (
    SOURCE_RULES,
    GsObject,
    SourceKind,
    SourceNotAllowed,
    SourceRules,
    check_source,
    parse_gs_uri,
    source_kind,
)
from pipelines.media.spec import MediaInput

OWN = "longrun-test-longrun"
RULES = SourceRules(buckets=frozenset({"media-in"}), own_bucket=OWN)


def settings_with(**values: str) -> Settings:
    """Settings as the environment would give them (strings), with longrun's bucket at OWN."""
    return Settings.model_validate({"bucket": OWN, **values})


def escaped_spellings(bucket: str) -> list[str]:
    """The bucket with each of its letters percent-escaped, in both hex cases."""
    return [
        bucket[:i] + f"%{ord(c):02{case}}" + bucket[i + 1 :]
        for i, c in enumerate(bucket)
        for case in ("x", "X")
    ]


REFUSED = [
    *(f"gs://{b}/jobs/abc/source.mp4" for b in escaped_spellings(OWN)),
    f"gs://{OWN.upper()}/x.mp4",
    "gs://Media-in/x.mp4",
    "gs://media-in./x.mp4",
    "gs://.media-in/x.mp4",
    "gs://media-in%2F/x.mp4",
    "gs://media-in/../other/x.mp4",
    "gs://media-in/a/../x.mp4",
    "gs://media-in/./x.mp4",
    "gs://media-in/..",
    "gs://media-in/.",
    "gs://media-in//x.mp4",
    "gs://media-in/x.mp4/",
    "gs://media-in/a%2F..%2Fx.mp4",
    "gs://media-in/x%20.mp4",
    "gs://\uff4dedia-in/x.mp4",  # full-width m
    "gs://medi\u0430-in/x.mp4",  # Cyrillic a
    "gs://media\u2010in/x.mp4",  # Unicode hyphen
    " gs://media-in/x.mp4",
    "gs://media-in/x.mp4 ",
    "gs://media-in/x.mp4\n",
    "gs://media-in/x\r\n.mp4",
    "gs://media-in/x\x00.mp4",
    "gs://media-in/x\x7f.mp4",
    "gs://media-in/x\u0085.mp4",
    "gs://media-in/\ud800.mp4",  # not encodable as UTF-8
    "gs:/media-in/x.mp4",
    "gs:media-in/x.mp4",
    "GS://media-in/x.mp4",
    "Gs://media-in/x.mp4",
    "gs://media-in",
    "gs://media-in/",
    "gs:///x.mp4",
    "gs://user@media-in/x.mp4",
    "gs://media-in:443/x.mp4",
    "gs://media-in/x.mp4?generation=1",
    "gs://media-in/x.mp4#frag",
    "gs://me/x.mp4",
    f"gs://{'a' * 64}/x.mp4",
    f"gs://{'a' * 64}.example.com/x.mp4",
    "gs://a..b.example/x.mp4",
    "gs://192.168.5.4/x.mp4",
    "gs://goog-media/x.mp4",
    "gs://my-google-media/x.mp4",
    "gs://my-g00gle-media/x.mp4",
    "gs://-media-in/x.mp4",
    "gs://media-in-/x.mp4",
    f"gs://media-in/{'x' * 1025}",
    f"gs://media-in/{'é' * 513}",  # 1026 bytes in UTF-8
    "gs://media-in/.well-known/acme-challenge/x",
]


@pytest.mark.parametrize("uri", REFUSED)
def test_the_parser_refuses_every_spelling_that_could_be_read_differently(uri: str) -> None:
    with pytest.raises(SourceNotAllowed) as refused:
        parse_gs_uri(uri)

    assert refused.value.code == "SOURCE_NOT_ALLOWED"
    assert isinstance(refused.value, PermanentError), "a spelling never gets better on a retry"


@pytest.mark.parametrize("uri", REFUSED)
def test_storage_uses_the_same_parser(uri: str) -> None:
    with pytest.raises(SourceNotAllowed):
        storage_parse_gs_uri(uri)


@pytest.mark.parametrize(
    ("uri", "bucket", "name"),
    [
        ("gs://media-in/x.mp4", "media-in", "x.mp4"),
        ("gs://media_in-2/a/b/c.mp4", "media_in-2", "a/b/c.mp4"),
        ("gs://media.example.com/My Stream (1).mp4", "media.example.com", "My Stream (1).mp4"),
        ("gs://abc/vidéo-été.mp4", "abc", "vidéo-été.mp4"),
        (f"gs://{'.'.join(['a' * 63] * 3)}/x", ".".join(["a" * 63] * 3), "x"),
        (f"gs://media-in/{'x' * 1024}", "media-in", "x" * 1024),
    ],
)
def test_the_parser_keeps_names_cloud_storage_allows(uri: str, bucket: str, name: str) -> None:
    assert parse_gs_uri(uri) == GsObject(bucket, name)
    assert parse_gs_uri(uri).uri == uri


def test_gs_sources_are_off_when_no_bucket_is_listed() -> None:
    with pytest.raises(SourceNotAllowed) as refused:
        check_source("gs://media-in/x.mp4", SourceRules(own_bucket=OWN))

    assert "LONGRUN_SOURCE_BUCKETS" in refused.value.message


def test_only_listed_buckets_are_read_and_never_longrun_s_own() -> None:
    listed_own = SourceRules(buckets=frozenset({"media-in", OWN}), own_bucket=OWN)

    assert check_source("gs://media-in/x.mp4", RULES) == SourceKind.GCS
    with pytest.raises(SourceNotAllowed):
        check_source("gs://media-out/x.mp4", RULES)
    with pytest.raises(SourceNotAllowed):
        check_source(f"gs://{OWN}/uploads/abc/x.mp4", listed_own)


def test_an_upload_id_and_https_are_not_subject_to_the_bucket_list() -> None:
    no_buckets = SourceRules(own_bucket=OWN)

    assert check_source("Ab3dEfGh1jKlMn0pQr5s", no_buckets) == SourceKind.UPLOAD
    assert check_source("https://example.com/x.mp4", no_buckets) == SourceKind.HTTPS


def test_submitted_input_is_checked_against_the_rules_it_is_given() -> None:
    context = {SOURCE_RULES: RULES}

    with pytest.raises(ValidationError) as refused:
        MediaInput.model_validate({"source": f"gs://{OWN}/jobs/a/source.mp4"}, context=context)

    assert refused.value.errors()[0]["type"] == "source_not_allowed"
    assert MediaInput.model_validate({"source": "gs://media-in/x.mp4"}, context=context)


def test_source_kind_alone_still_refuses_the_spelling() -> None:
    with pytest.raises(SourceNotAllowed):
        source_kind(f"gs://{OWN.replace('l', '%6c', 1)}/x.mp4")


def test_the_source_bucket_setting_is_a_list_of_canonical_names() -> None:
    settings = settings_with(source_buckets=" Media-In ,other.example.com")

    assert settings.source_buckets == ["media-in", "other.example.com"]
    assert settings_with().source_buckets == []
    assert settings_with(source_buckets='["a-b", "c_d"]').source_buckets == ["a-b", "c_d"]


@pytest.mark.parametrize("listed", [OWN, f" {OWN.upper()} ", f"media-in,{OWN}"])
def test_longrun_s_own_bucket_cannot_be_listed_as_a_source(listed: str) -> None:
    with pytest.raises(ValidationError, match="own bucket"):
        settings_with(source_buckets=listed)


@pytest.mark.parametrize("listed", ["media%2Din", "ab", "goog-x", "media in", "*"])
def test_a_bucket_list_with_a_name_storage_would_refuse_stops_start_up(listed: str) -> None:
    with pytest.raises(ValidationError, match="LONGRUN_SOURCE_BUCKETS"):
        settings_with(source_buckets=listed)
