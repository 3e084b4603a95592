"""Uploads: a client asks for a place, then sends the file straight to Cloud Storage."""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

# What may be uploaded: media, and the text formats of chat logs. Subtypes are RFC 6838
# restricted names, ASCII only: the type goes into HTTP headers, which are latin-1.
_ALLOWED_TYPE = re.compile(
    r"^(audio|video)/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$|^(text/csv|text/plain|application/x-ndjson"
    r"|application/jsonl|application/json|application/octet-stream)$",
    re.ASCII,
)
_UNSAFE_FILENAME = re.compile(r"[^\w.()+-]+")


class UploadRequest(BaseModel):
    """What a client says about the file it wants to upload."""

    model_config = ConfigDict(extra="forbid")

    filename: str = Field(min_length=1, max_length=200, examples=["stream.mp4"])
    content_type: str = Field(min_length=3, max_length=100, examples=["video/mp4"])
    size_bytes: int = Field(gt=0, le=2**53, examples=[104857600])  # past int64, Firestore fails

    @field_validator("content_type")
    @classmethod
    def _media_or_chat(cls, value: str) -> str:
        value = value.split(";")[0].strip().lower()
        if not _ALLOWED_TYPE.match(value):
            raise ValueError("only audio/*, video/* and chat logs (CSV, JSON lines) are accepted")
        return value

    def object_filename(self) -> str:
        """The filename made safe for an object name (no slashes, no surprises)."""
        name = _UNSAFE_FILENAME.sub("_", self.filename).strip("._")
        return name[:120] or "upload"


class Upload(BaseModel):
    """The record at `uploads/{upload_id}`: whose it is and where its bytes go."""

    upload_id: str
    owner: str
    filename: str
    content_type: str
    size_bytes: int
    uri: str
    created_at: datetime
    expire_at: datetime


class UploadTicket(BaseModel):
    """Where and how to send the file; use `upload_id` as a job's `source` afterwards."""

    upload_id: str
    upload_url: str = Field(description="Resumable upload session: PUT the bytes here.")
    method: str = "PUT"
    headers: dict[str, str]
    max_bytes: int
