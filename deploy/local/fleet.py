"""N processor processes behind one push endpoint, as Cloud Run runs the processor on N instances.

    python -m deploy.local.fleet --port PORT --processors N [--log-dir DIR] [--grace-seconds S]

What it copies from Cloud Run, and why each matters to longrun:
- Each instance is its own process: its own pid, so its own lease owner name
  (processor.app.instance_name), its own memory, and its own log, `processor-<i>.log`.
- A front end on the one endpoint routes each request, not each connection, to the serving
  instance with the fewest requests in flight (ties in turn), as Cloud Run routes a request to an
  instance with room for it. Stages are CPU-bound, so two pushes in flight land on two processes.
- A request that reaches no instance (it died, or is still starting) goes to another one, or
  waits up to QUEUE_SECONDS for one, as Cloud Run holds a request while it starts an instance. A
  request whose instance dies under it is answered 502: Pub/Sub takes that as a nack and delivers
  the message again, as it does when a Cloud Run instance crashes.
- An instance that dies is replaced at once (a new process on a new port, appending to the same
  log), as Cloud Run replaces a crashed instance; nothing is routed to it before its /healthz
  answers.
- SIGTERM stops routing and SIGTERMs every instance, which finish or hand back their stages within
  their grace period, as on a Cloud Run scale-down. The instances stay in the fleet's process
  group, so a SIGKILL of the group leaves nothing behind either.

`uvicorn --workers N` was the other way to get N processes, and it does spread pushes: the Pub/Sub
emulator opens a new connection for nearly every push (19 connections for 20 pushes, measured), and
the kernel handed them to two workers 12 to 8. But a worker accepts a connection whether or not it
is busy (routing by accept, not by load), all workers write one interleaved log, and their pids
hide behind uvicorn's supervisor. The front end costs one loopback hop per request (under a
millisecond), so a single processor (`processors=1`) runs without it, exactly as before.

`GET /_fleet` (answered by the front end itself) lists the instances: name, pid, port, whether it is
alive and serving, requests in flight and served, and how often it was replaced.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from deploy.local.apps import HOST, MAX_PROCESSORS, app_process
from deploy.local.processes import ManagedProcess, StackError, free_port
from jobs.contract.settings import Settings
from jobs.telemetry.logs import configure_logging

log = logging.getLogger("longrun.fleet")

STATUS_PATH = "/_fleet"
# N processes importing PyAV, numpy and Google's clients at once on a small, busy machine.
READY_TIMEOUT_SECONDS = 120.0
# How long a request waits for a serving instance before it is answered 503 (Pub/Sub retries).
QUEUE_SECONDS = 10.0
WATCH_EVERY_SECONDS = 0.2
# Replacements closer together than this wait, so a crash loop does not spin the CPU.
MIN_RESTART_GAP_SECONDS = 1.0
# The processor releases its leases within 2 s after its grace period (processor/app.py).
RELEASE_SECONDS = 2.0
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host"}
)
# httpx recomputes the length of what it sends and undoes any encoding of what it reads.
_REQUEST_DROPPED = _HOP_BY_HOP | {"content-length"}
_RESPONSE_DROPPED = _HOP_BY_HOP | {"content-length", "content-encoding"}
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@dataclass
class Instance:
    """One processor process of the fleet, and what the front end knows of it."""

    index: int
    process: ManagedProcess
    port: int
    started_at: float
    serving: bool = False
    in_flight: int = 0
    served: int = 0
    restarts: int = 0

    @property
    def name(self) -> str:
        return self.process.name

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def status(self) -> dict[str, Any]:
        alive = self.process.alive
        return {
            "name": self.name,
            "pid": self.process.pid,
            "port": self.port,
            "alive": alive,
            "serving": self.serving and alive,
            "in_flight": self.in_flight,
            "served": self.served,
            "restarts": self.restarts,
        }


@dataclass
class Fleet:
    """The instances, the front end's routing over them, and their replacement."""

    size: int
    log_dir: Path | None
    grace_seconds: float
    instances: list[Instance] = field(default_factory=list)
    _stopping: bool = False
    _turn: itertools.count[int] = field(default_factory=itertools.count)
    _probes: dict[int, asyncio.Task[None]] = field(default_factory=dict)
    _client: httpx.AsyncClient = field(
        # No keep-alive: a replaced instance listens on a new port, and a pooled connection to
        # a dead one would fail a request that was never delivered.
        default_factory=lambda: httpx.AsyncClient(
            timeout=httpx.Timeout(None, connect=2.0),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
        )
    )

    def _launch(self, index: int) -> Instance:
        port = free_port()
        process = app_process(
            "processor",
            port,
            # The fleet runs in the stack's environment; each instance gets the same.
            env=dict(os.environ),
            log_dir=self.log_dir,
            grace_seconds=self.grace_seconds,
            name=f"processor-{index + 1}",
            own_group=False,
        )
        process.start()
        loop = asyncio.get_running_loop()
        log.info("instance started", extra={"instance": process.name, "pid": process.pid})
        return Instance(index=index, process=process, port=port, started_at=loop.time())

    async def start(self) -> None:
        """Start every instance and wait until each one serves."""
        self.instances = [self._launch(index) for index in range(self.size)]
        waits = (self._until_serving(instance) for instance in self.instances)
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            await asyncio.gather(*waits)

    async def _until_serving(self, instance: Instance) -> None:
        while not instance.serving:
            if not instance.process.alive:
                raise StackError(f"{instance.name} exited while starting; see its log.")
            with contextlib.suppress(httpx.HTTPError):
                response = await self._client.get(f"{instance.url}/healthz", timeout=1.0)
                instance.serving = response.status_code == 200
            await asyncio.sleep(0.1)
        log.info("instance serving", extra={"instance": instance.name, "port": instance.port})

    async def watch(self) -> None:
        """Replace every instance that dies, and route again to one that answers again."""
        while not self._stopping:
            await asyncio.sleep(WATCH_EVERY_SECONDS)
            for instance in list(self.instances):
                if self._stopping:
                    return
                if not instance.process.alive:
                    self._replace(instance)
                elif not instance.serving and instance.index not in self._probes:
                    self._probe(instance)

    def _replace(self, dead: Instance) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() - dead.started_at < MIN_RESTART_GAP_SECONDS:
            return
        assert dead.process.process is not None
        log.warning(
            "instance exited; starting a new one",
            extra={
                "instance": dead.name,
                "pid": dead.process.pid,
                "code": dead.process.process.returncode,
            },
        )
        dead.process.close_log()
        fresh = self._launch(dead.index)
        fresh.restarts = dead.restarts + 1
        fresh.served = dead.served
        self.instances[dead.index] = fresh
        self._probe(fresh)

    def _probe(self, instance: Instance) -> None:
        async def probe() -> None:
            try:
                await self._until_serving(instance)
            except StackError:
                pass  # it died again; the watch replaces it
            finally:
                self._probes.pop(instance.index, None)

        self._probes[instance.index] = asyncio.create_task(probe())

    def _pick(self) -> Instance | None:
        """The serving instance with the fewest requests in flight; ties take turns."""
        serving = [i for i in self.instances if i.serving and i.process.alive]
        if not serving:
            return None
        turn = next(self._turn)
        return min(serving, key=lambda i: (i.in_flight, (i.index - turn) % self.size))

    async def forward(self, request: Request) -> Response:
        """Send the request to one instance and its answer back."""
        body = await request.body()
        headers = [(k, v) for k, v in request.headers.items() if k not in _REQUEST_DROPPED]
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + QUEUE_SECONDS
        while True:
            instance = self._pick()
            if instance is None:
                if self._stopping or loop.time() >= deadline:
                    return Response(status_code=503, headers={"Retry-After": "1"})
                await asyncio.sleep(0.05)
                continue
            instance.in_flight += 1
            started = loop.time()
            try:
                upstream = await self._client.request(
                    request.method, instance.url + target, content=body, headers=headers
                )
            except (httpx.ConnectError, httpx.ConnectTimeout):
                instance.serving = False  # it never got the request: another one may take it
                continue
            except httpx.TransportError as exc:
                log.warning(
                    "instance failed a request in flight",
                    extra={"instance": instance.name, "path": target, "error": repr(exc)},
                )
                return Response(status_code=502)
            finally:
                instance.in_flight -= 1
            instance.served += 1
            log.info(
                "routed",
                extra={
                    "instance": instance.name,
                    "method": request.method,
                    "path": request.url.path,
                    "status": upstream.status_code,
                    "seconds": round(loop.time() - started, 3),
                },
            )
            kept = {k: v for k, v in upstream.headers.items() if k not in _RESPONSE_DROPPED}
            return Response(upstream.content, status_code=upstream.status_code, headers=kept)

    async def status(self, _: Request) -> JSONResponse:
        """The instances, as the front end sees them."""
        return JSONResponse({"instances": [i.status() for i in self.instances]})

    def terminate(self) -> None:
        """Stop routing and replacing, and SIGTERM every instance (safe in a signal handler)."""
        self._stopping = True
        for instance in self.instances:
            instance.process.signal(signal.SIGTERM)

    async def close(self) -> None:
        """Stop every instance: SIGTERM, their grace period and lease releases, then SIGKILL."""
        self.terminate()
        for _ in range(int((self.grace_seconds + RELEASE_SECONDS + 1) * 10)):
            if not any(i.process.alive for i in self.instances):
                break
            await asyncio.sleep(0.1)
        for instance in self.instances:
            instance.process.stop(grace_seconds=0)  # SIGKILLs what is left, reaps, closes the log
        for probe in list(self._probes.values()):
            probe.cancel()
        await self._client.aclose()


def create_app(fleet: Fleet) -> Starlette:
    """The front end: /_fleet answered here, everything else routed to an instance."""

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            await fleet.start()
        except BaseException:
            await fleet.close()
            raise
        watcher = asyncio.create_task(fleet.watch())
        try:
            yield
        finally:
            watcher.cancel()
            await fleet.close()

    routes = [
        Route(STATUS_PATH, fleet.status, methods=["GET"]),
        Route("/{path:path}", fleet.forward, methods=_METHODS),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


class _FrontEnd(uvicorn.Server):
    """uvicorn, telling the instances to stop as soon as it is told to."""

    def __init__(self, config: uvicorn.Config, fleet: Fleet) -> None:
        super().__init__(config)
        self.fleet = fleet

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # The instances start their graceful shutdown at once (when the whole process group got
        # the signal they have it already), so the requests in flight here end within it.
        self.fleet.terminate()
        super().handle_exit(sig, frame)


def main(argv: list[str] | None = None) -> None:
    """Run a fleet until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m deploy.local.fleet", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--processors", type=int, required=True)
    parser.add_argument("--log-dir", type=Path, default=None)
    parser.add_argument("--grace-seconds", type=float, default=8.0)
    args = parser.parse_args(argv)
    if not 1 <= args.processors <= MAX_PROCESSORS:
        parser.error(f"--processors must be between 1 and {MAX_PROCESSORS}")
    settings = Settings()
    configure_logging(settings.log_level, settings.project_id)
    # The front end logs each request it routes itself, by instance name rather than port.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    fleet = Fleet(size=args.processors, log_dir=args.log_dir, grace_seconds=args.grace_seconds)
    config = uvicorn.Config(
        create_app(fleet),
        host=HOST,
        port=args.port,
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        # Requests in flight end with the instances' own graceful shutdown, or fail with them.
        timeout_graceful_shutdown=int(args.grace_seconds + RELEASE_SECONDS + 1),
    )
    server = _FrontEnd(config, fleet)
    asyncio.run(server.serve())
    if not server.started:
        sys.exit(3)


if __name__ == "__main__":
    main()
