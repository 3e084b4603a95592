"""Clients built once in the app's lifespan, reached by routes through typed dependencies."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from google.cloud import firestore

from jobs.cloud.publisher import StagePublisher
from jobs.cloud.quotas import Quotas
from jobs.cloud.storage import Storage
from jobs.cloud.store import JobStore
from jobs.contract.settings import Settings
from service.auth import Authenticator
from service.idempotency import IdempotencyKeys


@dataclass
class ServiceState:
    settings: Settings
    store: JobStore
    publisher: StagePublisher
    storage: Storage
    listener: firestore.Client  # the sync client: only it can listen to documents
    authenticator: Authenticator
    sample_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.longrun
    return state


def _store(request: Request) -> JobStore:
    return _state(request).store


def _publisher(request: Request) -> StagePublisher:
    return _state(request).publisher


def _settings(request: Request) -> Settings:
    return _state(request).settings


def _storage(request: Request) -> Storage:
    return _state(request).storage


def _listener(request: Request) -> firestore.Client:
    return _state(request).listener


def _quotas(request: Request) -> Quotas:
    state = _state(request)
    return Quotas(state.store, state.settings)


def _idempotency_keys(request: Request) -> IdempotencyKeys:
    state = _state(request)
    return IdempotencyKeys(state.store.client, state.settings)


def _sample_lock(request: Request) -> asyncio.Lock:
    return _state(request).sample_lock


StoreDep = Annotated[JobStore, Depends(_store)]
PublisherDep = Annotated[StagePublisher, Depends(_publisher)]
SettingsDep = Annotated[Settings, Depends(_settings)]
StorageDep = Annotated[Storage, Depends(_storage)]
ListenerDep = Annotated[firestore.Client, Depends(_listener)]
SampleLockDep = Annotated[asyncio.Lock, Depends(_sample_lock)]
QuotasDep = Annotated[Quotas, Depends(_quotas)]
IdempotencyKeysDep = Annotated[IdempotencyKeys, Depends(_idempotency_keys)]
