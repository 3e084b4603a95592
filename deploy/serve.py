"""The container's start command: `python -m deploy.serve` runs the service or the processor under
uvicorn the way Cloud Run wants it.

One image serves both Cloud Run services; `LONGRUN_APP` (`service` or `processor`) picks the app
and Cloud Run's `PORT` the port. One process per container (Cloud Run scales containers, not
workers), no reload, and a graceful shutdown that ends inside the 10 s Cloud Run allows after
SIGTERM: uvicorn lets requests in flight finish for 8 s, then the app's lifespan closes (the
processor gives back its leases in the remaining time).
"""

from __future__ import annotations

from typing import Literal

import uvicorn
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

GRACEFUL_SHUTDOWN_SECONDS = 8
# Cloud Run's front end is the only peer: trust its X-Forwarded-For and X-Forwarded-Proto.
FORWARDED_ALLOW_IPS = "*"
# Cloud Run routes to the container's port on any interface.
HOST = "0.0.0.0"


class Launch(BaseSettings):
    """How the container starts; the apps' own settings are jobs.contract.settings.Settings."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    app: Literal["service", "processor"] = Field(default="service", validation_alias="LONGRUN_APP")
    port: int = Field(default=8080, ge=1, le=65535, validation_alias="PORT")


def main() -> None:
    """Serve the chosen app until SIGTERM."""
    launch = Launch()
    uvicorn.run(
        f"{launch.app}.app:create_app",
        factory=True,
        host=HOST,
        port=launch.port,
        workers=None,
        reload=False,
        proxy_headers=True,
        forwarded_allow_ips=FORWARDED_ALLOW_IPS,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        # The apps' logging setup takes uvicorn's loggers over (JSON lines for Cloud Logging), so
        # uvicorn installs no handlers of its own.
        log_config=None,
        # Cloud Run logs every request itself; a second line per request would only cost.
        access_log=False,
        server_header=False,
    )


if __name__ == "__main__":
    main()
