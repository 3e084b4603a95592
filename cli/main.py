"""The `longrun` command: run the local stack, submit jobs, watch them."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import httpx
import typer

from cli.api import client, err
from cli.demo import upload_sample
from cli.job_commands import COMMANDS, ApiOption, console, submit_job
from cli.outcomes import ExitCode
from cli.statusline import StatusLine
from cli.uploading import upload_file
from deploy.local.apps import MAX_PROCESSORS
from deploy.local.processes import StackError
from deploy.local.stack import LocalStack, Ports
from jobs.contract.settings import Settings
from samples.packages import PackageUnavailable

app = typer.Typer(
    help="longrun: long analysis jobs, submitted, watched and finished. Exit codes: "
    "0 succeeded, 1 failed (the job, or the command), 2 wrong usage, 3 cancelled."
)


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
    transcript_span_seconds: Annotated[
        float | None,
        typer.Option(
            min=10,
            help="Seconds of each transcription span (default 300); short spans show "
            "transcript lines arriving sooner (`longrun demo --speech`).",
        ),
    ] = None,
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
    waiting = StatusLine(console)
    stack = LocalStack(
        say=lambda text: console.print(f"[bold]longrun dev[/]: {text}"),
        waiting=waiting,
        ports=ports,
        processors=processors,
        transcript_span_seconds=transcript_span_seconds,
    )
    try:
        stack.check()
        stack.start()
        stack.supervise(stop)
    except StackError as exc:
        # Unwrapped: its lines are commands to copy.
        err.print(f"longrun dev: {exc}", style="red", markup=False, soft_wrap=True)
        raise typer.Exit(ExitCode.USAGE) from None
    finally:
        waiting(None)
        console.print("[bold]longrun dev[/]: stopping...")
        stack.stop()


@app.command()
def demo(
    watch: Annotated[bool, typer.Option(help="Show live progress until the job ends.")] = True,
    speech: Annotated[
        bool, typer.Option(help="Transcribe 90 s of read speech instead, looking for keywords.")
    ] = False,
    api: ApiOption = None,
) -> None:
    """Analyse a generated 90-second sample video with its chat log, or with --speech a
    recording of read speech (needs `make dev`)."""
    api_url = api or Settings().api_url
    console.print("Making a sample recording and uploading it...")
    try:
        with client(api_url) as api_session:
            job_input = upload_sample(api_session, speech=speech)
    except PackageUnavailable as exc:
        err.print(f"[red]Cannot fetch the speech recording: {exc}[/]")
        raise typer.Exit(ExitCode.FAILED) from None
    except httpx.HTTPError as exc:
        err.print(f"[red]Cannot upload to the API at {api_url}: {exc}. Is `make dev` running?[/]")
        raise typer.Exit(ExitCode.FAILED) from None
    submit_job(api_url, "media-analysis", job_input, wait=watch, as_json=False)


@app.command()
def upload(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    api: ApiOption = None,
) -> None:
    """Upload a file; prints the upload id to use as a job's source."""
    with client(api or Settings().api_url) as api_session:
        console.print(upload_file(api_session, path))


for command in COMMANDS:
    app.command()(command)
