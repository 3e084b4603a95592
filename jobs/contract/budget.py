"""A new job's budget: the one it asks for or its pipeline's, checked against the ceiling and
against what the pipeline expects the job to cost, before anything is recorded."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from jobs.contract.errors import BudgetExceeded, InvalidRequest
from jobs.contract.pipeline import PipelineSpec
from jobs.contract.settings import Settings


def usd(amount: float) -> str:
    """Money for a message: at least cents, up to 4 decimals (6 below a cent), no noise."""
    text = f"{amount:.{4 if amount >= 0.01 else 6}f}".rstrip("0")
    whole, _, fraction = text.partition(".")
    return f"${whole}.{fraction.ljust(2, '0')}"


@dataclass(frozen=True)
class Budget:
    max_cost_usd: float
    estimated_cost_usd: float | None


def job_budget(
    spec: PipelineSpec, params: BaseModel, requested: float | None, settings: Settings
) -> Budget:
    """The budget a new job gets; refuses one over the ceiling, or an estimate over it."""
    ceiling = settings.max_cost_usd_ceiling
    if requested is not None and requested > ceiling:
        raise InvalidRequest(
            f"max_cost_usd may be at most {usd(ceiling)}.",
            code="BUDGET_OVER_CEILING",
            field="max_cost_usd",
        )
    # A pipeline's default above the operator's ceiling is held to the ceiling.
    budget = requested if requested is not None else min(spec.default_max_cost_usd, ceiling)
    estimate = spec.estimate_cost(params, settings.compute_usd_per_second)
    if estimate is not None and estimate > budget:
        raise BudgetExceeded(
            f"This job is expected to cost {usd(estimate)}, over its budget of {usd(budget)}.",
            field="max_cost_usd",
        )
    return Budget(max_cost_usd=budget, estimated_cost_usd=estimate)
