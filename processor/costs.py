"""What one delivery of a stage (or of one of its items) spends, and how it adds up on the job
document.

The rule: a stage's cost is everything all of its attempts, deliveries and items spent: their
compute time (claim to finish, at the processor instance's price) and what they reported with
`ctx.add_cost` (paid API calls). Each delivery adds what it spent since its last write to the
stage's costs as the job document shows them at that write (read and written under the job's
precondition), with each progress write and once more when it ends. So parallel items of one
stage add up instead of overwriting each other, a retried attempt or a continuation never counts
earlier ones' money again, and a failed attempt's money still counts: it was spent. A delivery
that crashed or lost its lease is counted up to its last write. The job's `cost_usd` is always
the sum of its stages' `cost_usd`.
"""

from __future__ import annotations

import math
import re
import threading
import time

from jobs.contract.budget import usd
from jobs.contract.errors import BudgetExceeded
from jobs.contract.models import Job
from jobs.contract.settings import Settings

COMPUTE = "compute"
# What a cost is for: a short name that reads well as a key of the stage's `costs`.
_WHAT = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


Amounts = dict[str, float]


class CostLedger:
    """One delivery's spending on one stage, and how much of it the job document shows."""

    def __init__(self, job: Job, settings: Settings) -> None:
        self._job_at_claim = job.cost_usd
        self._budget = job.max_cost_usd
        self._usd_per_second = settings.compute_usd_per_second
        self._started = time.monotonic()
        self._spent: Amounts = {}
        self._saved: Amounts = {}
        self._lock = threading.Lock()  # add() may be called from a stage's worker threads

    def add(self, amount_usd: float, what: str) -> None:
        """Record money spent on `what`; a stage may call it from any thread."""
        if not isinstance(what, str) or not _WHAT.fullmatch(what) or what == COMPUTE:
            raise ValueError(f"a cost needs a short lowercase name other than {COMPUTE!r}")
        if not math.isfinite(amount_usd) or amount_usd < 0:
            raise ValueError(f"a cost is a finite amount of USD, at least 0, not {amount_usd}")
        with self._lock:
            self._spent[what] = self._spent.get(what, 0.0) + amount_usd

    def spent(self) -> Amounts:
        """This delivery's spending by what it was for, its compute so far included."""
        compute = (time.monotonic() - self._started) * self._usd_per_second
        with self._lock:
            return {**self._spent, COMPUTE: compute}

    def unsaved(self) -> Amounts:
        """What this delivery spent that no write has added to the job yet."""
        return {name: amount - self._saved.get(name, 0.0) for name, amount in self.spent().items()}

    def saved(self, amounts: Amounts) -> None:
        """`amounts` (from `unsaved`) are on the job document now."""
        for name, amount in amounts.items():
            self._saved[name] = self._saved.get(name, 0.0) + amount

    def job_total(self) -> float:
        """What the whole job has spent, as far as this delivery can tell."""
        return self._job_at_claim + sum(self.spent().values())

    def check(self) -> None:
        """Raise BudgetExceeded once the job has spent more than its budget."""
        if self._budget is None:
            return
        spent = self.job_total()
        if spent > self._budget:
            raise BudgetExceeded(
                f"The job has spent {usd(spent)}, over its budget of {usd(self._budget)}."
            )


def charged(job: Job, index: int, amounts: Amounts) -> Job:
    """`job` (as last read) with `amounts` added to the stage's costs, and the totals updated."""
    job = job.model_copy(deep=True)
    stage = job.stages[index]
    names = sorted(stage.costs.keys() | amounts.keys())
    stage.costs = {name: stage.costs.get(name, 0.0) + amounts.get(name, 0.0) for name in names}
    stage.cost_usd = sum(stage.costs.values())
    job.cost_usd = sum(s.cost_usd for s in job.stages)
    return job
