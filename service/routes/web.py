"""The demo page, its configuration, and the static files it is built from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from jobs.contract.settings import Settings
from service.deps import SettingsDep

router = APIRouter(include_in_schema=False)


@router.get("/config.json")
async def page_config(settings: SettingsDep) -> dict[str, Any]:
    """What the page needs to sign in with Firebase Auth, reach Firestore and the API."""
    firebase = None
    if settings.firebase_web_api_key or settings.firestore_emulator_host:
        firebase = {
            "projectId": settings.project_id,
            "apiKey": settings.firebase_web_api_key or "emulator",
            "authDomain": settings.firebase_auth_domain or f"{settings.project_id}.firebaseapp.com",
        }
    return {
        "apiBase": "",
        "firebase": firebase,
        "firestoreEmulator": settings.firestore_emulator_host,
        "authEmulator": (
            f"http://{settings.firebase_auth_emulator_host}"
            if settings.local and settings.firebase_auth_emulator_host
            else None
        ),
    }


def mount_page(app: FastAPI, settings: Settings) -> None:
    """Serve the page's files at `/`, after every API route (they take precedence)."""
    directory = settings.web_dir or Path(__file__).parents[2] / "web" / "public"
    if directory.is_dir():
        app.mount("/", StaticFiles(directory=directory, html=True), name="page")
