"""What the CLI's exit codes mean, so scripts can tell a job's outcomes apart."""

from __future__ import annotations

from enum import IntEnum

from jobs.contract.models import JobStatus


class ExitCode(IntEnum):
    """0: the job succeeded (or the command did what was asked); 1: the job failed, or the
    command did (the API refused it or could not be reached); 2: the command was used wrongly;
    3: the job was cancelled."""

    SUCCEEDED = 0
    FAILED = 1
    USAGE = 2
    CANCELLED = 3


def exit_code(status: JobStatus) -> ExitCode:
    """The exit code of a command that followed a job to its end."""
    if status == JobStatus.SUCCEEDED:
        return ExitCode.SUCCEEDED
    if status == JobStatus.CANCELLED:
        return ExitCode.CANCELLED
    return ExitCode.FAILED
