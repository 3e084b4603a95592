"""What one delivery of a stage spends, and how it adds up on the job document.

The rule: a stage's cost is everything all of its attempts and deliveries spent: its compute
time (claim to finish, at the processor instance's price) and what it reported with
`ctx.add_cost` (paid API calls). A delivery starts from the stage's costs as the job document
shows them when it takes the lease, and writes that base plus its own spending with each
progress write and once more when it ends. So a retried attempt or a continuation adds its
own spending to what earlier ones spent and never counts theirs again, and a failed attempt's
money still counts: it was spent. A delivery that crashed or lost its lease is counted up to
its last progress write. The job's `cost_usd` is always the sum of its stages' `cost_usd`.
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


class CostLedger:
    """One delivery's spending on one stage, on top of what the stage had spent before it."""

    def __init__(self, job: Job, index: int, settings: Settings) -> None:
        stage = job.stages[index]
        self._base = dict(stage.costs)
        self._others = sum(s.cost_usd for i, s in enumerate(job.stages) if i != index)
        self._budget = job.max_cost_usd
        self._usd_per_second = settings.compute_usd_per_second
        self._started = time.monotonic()
        self._spent: dict[str, float] = {}
        self._lock = threading.Lock()  # add() may be called from a stage's worker threads

    def add(self, amount_usd: float, what: str) -> None:
        """Record money spent on `what`; a stage may call it from any thread."""
        if not isinstance(what, str) or not _WHAT.fullmatch(what) or what == COMPUTE:
            raise ValueError(f"a cost needs a short lowercase name other than {COMPUTE!r}")
        if not math.isfinite(amount_usd) or amount_usd < 0:
            raise ValueError(f"a cost is a finite amount of USD, at least 0, not {amount_usd}")
        with self._lock:
            self._spent[what] = self._spent.get(what, 0.0) + amount_usd

    def stage_costs(self) -> dict[str, float]:
        """The stage's costs by what they were for, this delivery's compute so far included."""
        compute = (time.monotonic() - self._started) * self._usd_per_second
        with self._lock:
            spent = {**self._spent, COMPUTE: compute}
        names = sorted(self._base.keys() | spent.keys())
        return {name: self._base.get(name, 0.0) + spent.get(name, 0.0) for name in names}

    def job_total(self) -> float:
        """What the whole job has spent, as far as this delivery can tell."""
        return self._others + sum(self.stage_costs().values())

    def check(self) -> None:
        """Raise BudgetExceeded once the job has spent more than its budget."""
        if self._budget is None:
            return
        spent = self.job_total()
        if spent > self._budget:
            raise BudgetExceeded(
                f"The job has spent {usd(spent)}, over its budget of {usd(self._budget)}."
            )

    def charged(self, job: Job, index: int) -> Job:
        """`job` (as last read) with the stage's costs so far, and the job's total, on it."""
        job = job.model_copy(deep=True)
        stage = job.stages[index]
        stage.costs = self.stage_costs()
        stage.cost_usd = sum(stage.costs.values())
        job.cost_usd = sum(s.cost_usd for s in job.stages)
        return job
