"""The floor for `overhead`: the least a Pub/Sub-push stage chain can do with Google's clients.

Each push runs a lease transaction (read and write a run document), writes the job's progress,
and publishes the next stage, or marks the job done: what longrun does per stage, with none of
its bookkeeping. It runs under uvicorn like the processor, so both pay the same HTTP costs.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import google.cloud.pubsub_v1 as pubsub_v1
from google.cloud import firestore
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_db = firestore.AsyncClient(project=os.environ["GOOGLE_CLOUD_PROJECT"])
_collection = _db.collection(os.environ["FLOOR_COLLECTION"])
_publisher = pubsub_v1.PublisherClient(batch_settings=pubsub_v1.types.BatchSettings(max_messages=1))
_topic = os.environ["FLOOR_TOPIC"]


async def push(request: Request) -> Response:
    envelope: dict[str, Any] = await request.json()
    message = json.loads(base64.b64decode(envelope["message"]["data"]))
    job = _collection.document(message["job_id"])
    stage: int = message["stage"]
    run = job.collection("runs").document(str(stage))

    @firestore.async_transactional
    async def lease(tx: firestore.AsyncTransaction) -> None:
        await run.get(transaction=tx)
        tx.set(run, {"owner": "floor", "attempts": 1})

    await lease(_db.transaction())
    last = stage == message["stages"]
    await job.update({"stage": stage, "progress": stage / message["stages"], "done": last})
    if not last:
        data = json.dumps({**message, "stage": stage + 1}).encode()
        _publisher.publish(_topic, data).result()
    return Response(status_code=204)


app = Starlette(routes=[Route("/push", push, methods=["POST"])])
