"""Everything a stage author uses, in one import: `from processor.stage import StageContext, ...`.

A stage is an async function `(ctx: StageContext) -> JSON-able output` named in its pipeline's
spec (jobs.contract.pipeline.StageSpec). Through `ctx` it reads its input and earlier outputs,
reports `progress`, stops at `check_cancelled`, saves a resumable `checkpoint`, runs CPU work off
the loop with `run_blocking`, and saves artifacts. It returns `Skipped(reason)` when it has nothing
to do, or (if its spec declares a `FanOut`) `Items([...])` to split its work into items that run
as messages of their own on any processor instance, each reading `ctx.item`, before the fan-out's
reduce turns `ctx.item_outputs` into the stage's output. It raises `PermanentError` (with a
stable code) for input that can never work, and `TransientError` for a failure worth another
attempt; anything else it raises is treated as a bug: retried once, then the job fails with
INTERNAL. `fetch_to_file` downloads a public https:// URL without becoming a proxy into private
networks; `Download` streams one into Storage, continuing over deliveries from a cursor.
"""

from jobs.contract.errors import BudgetExceeded, JobCancelled, PermanentError, TransientError
from jobs.contract.pipeline import FanOut, ItemFailure, PipelineSpec, StageSpec
from processor.context import Items, Skipped, StageContext
from processor.downloads import Download
from processor.fetch import AddressRules, fetch_to_file, trusted

__all__ = [
    "AddressRules",
    "BudgetExceeded",
    "Download",
    "FanOut",
    "ItemFailure",
    "Items",
    "JobCancelled",
    "PermanentError",
    "PipelineSpec",
    "Skipped",
    "StageContext",
    "StageSpec",
    "TransientError",
    "fetch_to_file",
    "trusted",
]
