"""The `longrun` command: run the local stack, submit jobs, watch them."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated, Any
from urllib.parse import urlparse

import httpx
import typer
from rich.console import Console

from cli.demo import upload_sample
from cli.session import api_client
from cli.uploading import upload_file
from cli.watch import watch_job
from deploy.local.apps import MAX_PROCESSORS
from deploy.local.processes import StackError
from deploy.local.stack import LocalStack, Ports
from jobs.cloud.identity import SignInError
from jobs.contract.models import JobStatus
from jobs.contract.settings import Settings

app = typer.Typer(help="longrun: long analysis jobs, submitted, watched and finished.")
console = Console()
err = Console(stderr=True)

ApiOption = Annotated[
    str | None, typer.Option("--api", help="API base URL (default: LONGRUN_API_URL).")
]


@app.command()
def dev(
    api_port: Annotated[int, typer.Option(help="Port of the API.")] = 8000,
    processor_port: Annotated[int, typer.Option(help="Port of the processor.")] = 8001,
    firestore_port: Annotated[int, typer.Option(help="Port of the Firestore emulator.")] = 8080,
    pubsub_port: Annotated[int, typer.Option(help="Port of the Pub/Sub emulator.")] = 8085,
    storage_port: Annotated[int, typer.Option(help="Port of the Storage emulator.")] = 9199,
    auth_port: Annotated[int, typer.Option(help="Port of the Firebase Auth emulator.")] = 9099,
    processors: Annotated[
        int,
        typer.Option(
            min=1,
            max=MAX_PROCESSORS,
            help="Processor processes behind the one push endpoint, as Cloud Run instances; "
            "a dead one is replaced. Their logs: processor-<i>.log.",
        ),
    ] = 1,
) -> None:
    """Run the whole system locally on Google's emulators, in the foreground."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    ports = Ports(
        firestore=firestore_port,
        pubsub=pubsub_port,
        storage=storage_port,
        auth=auth_port,
        service=api_port,
        processor=processor_port,
    )
    stack = LocalStack(
        say=lambda text: console.print(f"[bold]longrun dev[/]: {text}"),
        ports=ports,
        processors=processors,
    )
    try:
        stack.check()
        stack.start()
        stack.supervise(stop)
    except StackError as exc:
        err.print(f"[red]longrun dev: {exc}[/]")
        raise typer.Exit(2) from None
    finally:
        console.print("[bold]longrun dev[/]: stopping...")
        stack.stop()


@app.command()
def submit(
    pipeline: str,
    input_json: Annotated[str, typer.Option("--input", help="The job's input, as JSON.")] = "{}",
    watch: Annotated[bool, typer.Option(help="Show live progress until the job ends.")] = False,
    api: ApiOption = None,
) -> None:
    """Submit a job; with --watch, follow it to the end (exit 0 only if it succeeded)."""
    try:
        payload = json.loads(input_json)
    except json.JSONDecodeError as exc:
        err.print(f"[red]--input is not valid JSON: {exc}[/]")
        raise typer.Exit(2) from None
    _submit_and_follow(api or Settings().api_url, pipeline, payload, watch)


def _submit_and_follow(api_url: str, pipeline: str, payload: Any, watch: bool) -> None:
    body = _call(api_url, "POST", "/v1/jobs", {"pipeline": pipeline, "input": payload})
    job_id = body["job_id"]
    console.print(f"Submitted job [bold]{job_id}[/] ({pipeline}).")
    if watch:
        _follow(api_url, job_id)


def _follow(api_url: str, job_id: str) -> None:
    """Show the job live to its end, then its outcome; exit 1 unless it succeeded."""
    _use_local_emulator_for(api_url)
    with _client(api_url) as api_session:
        job = watch_job(job_id, Settings(), console, api_session)
    _print_outcome(job.status, job.message, job.error.model_dump() if job.error else None)
    if job.result and job.result.get("highlights"):
        for item in job.result["highlights"]:
            reasons = "; ".join(item["reasons"])
            console.print(
                f"  {item['start']:7.1f}-{item['end']:.1f} s  {item['score']:.2f}  {reasons}"
            )
            if item.get("clip"):  # soft_wrap: a URL cut over two lines cannot be copied
                url = f"{api_url}/v1/jobs/{job_id}/artifacts/{item['clip']}"
                console.print(f"           clip: {url}", soft_wrap=True)
        console.print(
            f"Artifacts: {api_url}/v1/jobs/{job_id}/artifacts/<name> ({', '.join(job.artifacts)})"
        )
    if job.status != JobStatus.SUCCEEDED:
        raise typer.Exit(1)


@app.command()
def watch(job_id: str, api: ApiOption = None) -> None:
    """Follow a job live, a bar per stage, to its end (exit 0 only if it succeeded)."""
    api_url = api or Settings().api_url
    _call(api_url, "GET", f"/v1/jobs/{job_id}")  # the API says whether it is the caller's to see
    _follow(api_url, job_id)


@app.command()
def demo(
    watch: Annotated[bool, typer.Option(help="Show live progress until the job ends.")] = True,
    api: ApiOption = None,
) -> None:
    """Analyse a generated 90-second sample video with its chat log (needs `make dev`)."""
    api_url = api or Settings().api_url
    console.print("Making a sample recording and uploading it...")
    try:
        with _client(api_url) as api_session:
            job_input = upload_sample(api_session)
    except httpx.HTTPError as exc:
        err.print(f"[red]Cannot upload to the API at {api_url}: {exc}. Is `make dev` running?[/]")
        raise typer.Exit(1) from None
    _submit_and_follow(api_url, "media-analysis", job_input, watch)


@app.command()
def upload(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    api: ApiOption = None,
) -> None:
    """Upload a file; prints the upload id to use as a job's source."""
    with _client(api or Settings().api_url) as api_session:
        console.print(upload_file(api_session, path))


@app.command()
def status(job_id: str, api: ApiOption = None) -> None:
    """Print a job's status, progress and result."""
    body = _call(api or Settings().api_url, "GET", f"/v1/jobs/{job_id}")
    console.print_json(data=body)


def _client(api_url: str) -> httpx.Client:
    try:
        return api_client(api_url)
    except httpx.HTTPError as exc:
        err.print(f"[red]Cannot reach the API at {api_url}: {exc}. Is `make dev` running?[/]")
        raise typer.Exit(1) from None
    except SignInError as exc:
        err.print(f"[red]Cannot sign in: {exc}[/]")
        raise typer.Exit(1) from None


def _call(api_url: str, method: str, path: str, payload: Any = None) -> dict[str, Any]:
    try:
        with _client(api_url) as api_session:
            response = api_session.request(method, path, json=payload)
    except httpx.HTTPError as exc:
        err.print(f"[red]Cannot reach the API at {api_url}: {exc}. Is `make dev` running?[/]")
        raise typer.Exit(1) from None
    body: dict[str, Any] = response.json() if response.content else {}
    if response.is_error:
        err.print(f"[red]{response.status_code} {body.get('code')}: {body.get('detail')}[/]")
        for field_error in body.get("errors") or []:
            err.print(f"  {field_error['field']}: {field_error['message']}")
        raise typer.Exit(1)
    return body


def _use_local_emulator_for(api_url: str) -> None:
    # Google's client finds the emulator through this variable; against a local API with no
    # emulator named, the local stack's own Firestore emulator is the one it means.
    host = urlparse(api_url).hostname or ""
    if host in ("127.0.0.1", "localhost", "::1") and "FIRESTORE_EMULATOR_HOST" not in os.environ:
        os.environ["FIRESTORE_EMULATOR_HOST"] = "127.0.0.1:8080"
        os.environ.setdefault("GOOGLE_CLOUD_PROJECT", "longrun-local")


def _print_outcome(status: JobStatus, message: str, error: dict[str, Any] | None) -> None:
    color = {JobStatus.SUCCEEDED: "green", JobStatus.CANCELLED: "magenta"}.get(status, "red")
    console.print(f"[{color}]Job {status.value}[/]: {message}")
    if error:
        console.print(f"  {error['code']}: {error['message']}")
