"""The commands on jobs: submit, list, watch, cancel, retry, download and status.

Each takes `--json` for scripts (JSON on stdout, nothing else there) and ends with an exit code
that means something (cli/outcomes.py): a command that follows a job to its end exits by the
job's outcome.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.markup import escape

from cli.api import call, client, err, refused, unreachable, use_local_emulator_for
from cli.downloading import DownloadError, download_artifacts
from cli.listing import jobs_table
from cli.outcomes import ExitCode, exit_code
from cli.sources import NotASource, check_source, resolve_source
from cli.watch import job_changes, watch_job
from jobs.contract.models import Job, JobStatus
from jobs.contract.settings import Settings

console = Console()

ApiOption = Annotated[
    str | None, typer.Option("--api", help="API base URL (default: LONGRUN_API_URL).")
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="JSON on stdout for scripts (a job: one line per change).")
]
WaitOption = Annotated[
    bool,
    typer.Option(
        "--watch",
        "--wait",
        help="Follow the job to its end, then exit by its outcome (0 succeeded, 1 failed, "
        "3 cancelled).",
    ),
]
# The API's largest page; `longrun jobs --limit` asks for as many pages as it takes.
PAGE_LIMIT = 100
# What a media job calls its copy of the recording among its artifacts (`source.mp4`, ...).
SOURCE_COPY = "source."


def _usage(message: str) -> NoReturn:
    err.print(message, style="red", markup=False, soft_wrap=True)
    raise typer.Exit(ExitCode.USAGE)


def submit(
    pipeline: Annotated[str, typer.Argument(help="media-analysis, diagnostic, ...")],
    source: Annotated[
        str | None,
        typer.Argument(
            help="The recording: a file here (uploaded first), or an https:// or "
            "gs:// URL. It becomes the input's `source`."
        ),
    ] = None,
    chat: Annotated[
        str | None, typer.Option(help="A chat log to read too: a file here or a URL.")
    ] = None,
    input_json: Annotated[str, typer.Option("--input", help="The job's input, as JSON.")] = "{}",
    wait: WaitOption = False,
    as_json: JsonOption = False,
    api: ApiOption = None,
) -> None:
    """Submit a job; with --watch, follow it to its end and exit by its outcome."""
    try:
        payload: Any = json.loads(input_json)
    except json.JSONDecodeError as exc:
        _usage(f"--input is not valid JSON: {exc}")
    if (source or chat) and not isinstance(payload, dict):
        _usage("--input must be a JSON object when a source or a chat log is given.")
    try:
        for named in (source, chat):
            if named is not None:
                check_source(named)
    except NotASource as exc:
        _usage(str(exc))
    api_url = api or Settings().api_url
    if source or chat:
        payload.update(_sources(api_url, source=source, chat=chat))
    submit_job(api_url, pipeline, payload, wait, as_json)


def _sources(api_url: str, **named: str | None) -> dict[str, str]:
    """Each named source as the job takes it: URLs as they are, files uploaded first."""
    try:
        with client(api_url) as session:
            return {
                key: resolve_source(session, value, err)
                for key, value in named.items()
                if value is not None
            }
    except httpx.HTTPStatusError as exc:
        refused(exc.response)
    except httpx.HTTPError as exc:
        unreachable(api_url, exc)


def submit_job(api_url: str, pipeline: str, payload: Any, wait: bool, as_json: bool) -> None:
    """Submit, say so (the job's JSON with --json), and with `wait` follow it to its end."""
    body = call(api_url, "POST", "/v1/jobs", {"pipeline": pipeline, "input": payload})
    if as_json and not wait:
        typer.echo(json.dumps(body))
    elif not as_json:
        console.print(f"Submitted job [bold]{body['job_id']}[/] ({escape(pipeline)}).")
    if wait:
        follow(api_url, body["job_id"], as_json)


def follow(api_url: str, job_id: str, as_json: bool) -> NoReturn:
    """Follow the job live to its end (bars, or with --json a line per change), then exit by
    its outcome."""
    use_local_emulator_for(api_url)
    try:
        with client(api_url) as session:
            if as_json:
                for job in job_changes(job_id, Settings(), session):
                    typer.echo(job.model_dump_json())
            else:
                job = watch_job(job_id, Settings(), console, session)
                _print_outcome(api_url, job)
    except LookupError as exc:  # deleted (or expired) while watched
        err.print(str(exc), style="red", markup=False)
        raise typer.Exit(ExitCode.FAILED) from None
    raise typer.Exit(exit_code(job.status))


def _print_outcome(api_url: str, job: Job) -> None:
    color = {JobStatus.SUCCEEDED: "green", JobStatus.CANCELLED: "magenta"}.get(job.status, "red")
    console.print(f"[{color}]Job {job.status.value}[/]: {escape(job.message)}")
    if job.error:
        console.print(f"  {job.error.code}: {escape(job.error.message)}")
    for item in (job.result or {}).get("highlights") or []:
        reasons = escape("; ".join(item["reasons"]))  # a keyword may hold [brackets]
        console.print(f"  {item['start']:7.1f}-{item['end']:.1f} s  {item['score']:.2f}  {reasons}")
        for line in item.get("transcript", []):  # what was said in it, if transcribed
            console.print(f"      [dim]{line['start']:7.1f} s[/]  {escape(line['text'])}")
        if item.get("clip"):  # soft_wrap: a URL cut over two lines cannot be copied
            url = f"{api_url}/v1/jobs/{job.job_id}/artifacts/{item['clip']}"
            console.print(f"           clip: {url}", soft_wrap=True)
    if job.artifacts:
        console.print(
            f"Artifacts: {', '.join(map(escape, job.artifacts))} "
            f"(`longrun download {job.job_id}`, or {api_url}/v1/jobs/{job.job_id}/artifacts/<name>)"
        )


def watch(job_id: str, as_json: JsonOption = False, api: ApiOption = None) -> None:
    """Follow a job live, a bar per stage, to its end; exit by its outcome (0 succeeded,
    1 failed, 3 cancelled)."""
    api_url = api or Settings().api_url
    call(api_url, "GET", f"/v1/jobs/{job_id}")  # the API says whether it is the caller's to see
    follow(api_url, job_id, as_json)


def jobs(
    status: Annotated[JobStatus | None, typer.Option(help="Only jobs with this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many jobs.")] = 20,
    cursor: Annotated[
        str | None, typer.Option(help="Carry on after an earlier list (its next cursor).")
    ] = None,
    as_json: JsonOption = False,
    api: ApiOption = None,
) -> None:
    """List your jobs, newest first."""
    api_url = api or Settings().api_url
    found: list[dict[str, Any]] = []
    while True:
        params: dict[str, Any] = {"limit": min(PAGE_LIMIT, limit - len(found))}
        params.update({k: v for k, v in (("status", status), ("cursor", cursor)) if v})
        page = call(api_url, "GET", "/v1/jobs", params=params)
        found += page["jobs"]
        cursor = page["next_cursor"]
        if cursor is None or len(found) >= limit:
            break
    if as_json:
        typer.echo(json.dumps({"jobs": found, "next_cursor": cursor}))
        return
    if not found:
        console.print(f"No {status.value} jobs." if status else "No jobs yet.")
        return
    console.print(jobs_table([Job.model_validate(job) for job in found]))
    if cursor is not None:
        more = f" --status {status.value}" if status else ""
        console.print(f"More: longrun jobs{more} --cursor {cursor}")


def cancel(job_id: str, wait: WaitOption = False, as_json: JsonOption = False,
           api: ApiOption = None) -> None:  # fmt: skip
    """Cancel a job: at once if no stage runs, else at the running stage's next check."""
    api_url = api or Settings().api_url
    body = call(api_url, "POST", f"/v1/jobs/{job_id}/cancel")
    if as_json and not wait:
        typer.echo(json.dumps(body))
    elif not as_json and body["status"] == JobStatus.CANCELLED:
        console.print(f"Job [bold]{job_id}[/] cancelled.")
    elif not as_json:
        console.print(f"Cancel requested: job [bold]{job_id}[/] stops at its next check.")
    if wait:
        follow(api_url, job_id, as_json)


def retry(job_id: str, wait: WaitOption = False, as_json: JsonOption = False,
          api: ApiOption = None) -> None:  # fmt: skip
    """Run a failed job again from its first stage that did not succeed."""
    api_url = api or Settings().api_url
    body = call(api_url, "POST", f"/v1/jobs/{job_id}/retry")
    if as_json and not wait:
        typer.echo(json.dumps(body))
    elif not as_json:
        console.print(f"Job [bold]{job_id}[/] queued again at its first unfinished stage.")
    if wait:
        follow(api_url, job_id, as_json)


def download(
    job_id: str,
    name: Annotated[
        str | None,
        typer.Argument(help="One artifact (default: every one but the copy of the recording)."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", file_okay=False, help="Directory (default: ./JOB_ID)."),
    ] = None,
    as_json: JsonOption = False,
    api: ApiOption = None,
) -> None:
    """Download a job's artifacts (report, pictures, ...), each with a progress bar."""
    api_url = api or Settings().api_url
    job = Job.model_validate(call(api_url, "GET", f"/v1/jobs/{job_id}"))
    artifacts = job.artifacts
    if name is not None:
        if name not in artifacts:
            has = f" (it has: {', '.join(artifacts)})" if artifacts else ""
            err.print(f"Job {job_id} has no artifact {name!r}{has}.", style="red", markup=False)
            raise typer.Exit(ExitCode.FAILED)
        artifacts = {name: artifacts[name]}
    else:  # the recording's own copy (`source.*`) may be many GB: only when asked by name
        artifacts = {n: a for n, a in artifacts.items() if not n.startswith(SOURCE_COPY)}
    if not artifacts:
        err.print(f"Job {job_id} has no artifacts ({job.status.value}).", style="red", markup=False)
        raise typer.Exit(ExitCode.FAILED)
    directory = output or Path(job_id)
    try:
        with client(api_url) as session:
            saved = download_artifacts(session, job_id, artifacts, directory, err)
    except DownloadError as exc:
        err.print(str(exc), style="red", markup=False)
        raise typer.Exit(ExitCode.FAILED) from None
    except httpx.HTTPError as exc:
        unreachable(api_url, exc)
    if as_json:
        files = [{"name": s.name, "path": str(s.path), "size_bytes": s.size_bytes,
                  "content_type": s.content_type} for s in saved]  # fmt: skip
        typer.echo(json.dumps({"job_id": job_id, "directory": str(directory), "files": files}))
        return
    console.print(f"Saved {len(saved)} file(s) in {escape(str(directory))}/:")
    for item in saved:
        console.print(f"  {escape(item.name)}  {item.size_bytes} bytes")


def status(job_id: str, api: ApiOption = None) -> None:
    """Print a job's document: status, progress, stages, result and artifacts (JSON)."""
    body = call(api or Settings().api_url, "GET", f"/v1/jobs/{job_id}")
    console.print_json(data=body)


COMMANDS = (submit, jobs, watch, cancel, retry, download, status)
