"""What a pipeline is, as both services see it: its input model, the stages an input plans, and
where each stage's function lives.

A pipeline is declared once, here: each stage names its function as "module:function", so the
API plans jobs without importing any stage code (media decoders and all), and the processor
imports exactly those functions, checking them all when it starts (processor.functions).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from jobs.contract.models import StageState


@dataclass(frozen=True)
class StageSpec:
    """A stage as planned: its name, the function that runs it ("module:function"), the label a
    UI shows, its share of progress, its limit."""

    name: str
    function: str
    label: str
    weight: float = 1.0
    timeout_seconds: float = 540.0

    def initial_state(self) -> StageState:
        return StageState(name=self.name, label=self.label, weight=self.weight)


@dataclass(frozen=True)
class PipelineSpec:
    """A pipeline: its validated input model and the stages a given input plans."""

    name: str
    description: str
    input_model: type[BaseModel]
    plan: Callable[[Any], list[StageSpec]]
    example_input: dict[str, Any]
    # "module:function" turning the stages' outputs (by stage name) into the job's result.
    result: str
    # Upload ids the input refers to; the API checks they exist and belong to the caller.
    uploads: Callable[[Any], list[str]] = lambda _params: []
    # What a job is expected to cost in USD, from its input and the price of a second of
    # processor time; None when there is no telling. An estimate over budget is refused.
    estimate: Callable[[Any, float], float | None] = lambda _params, _usd_per_second: None
    # The budget (USD) of a job whose request names none.
    default_max_cost_usd: float = 1.0

    def estimate_cost(self, params: Any, compute_usd_per_second: float) -> float | None:
        """The job's expected cost in USD before it starts, if the pipeline can tell."""
        return self.estimate(params, compute_usd_per_second)

    def example_stages(self) -> list[StageSpec]:
        """The stages planned for an example input, for listings."""
        return self.plan(self.input_model.model_validate(self.example_input))

    def stage_spec(self, job_input: dict[str, Any], stage: str) -> StageSpec | None:
        """The named stage as this job's input plans it; None if the plan has no such stage."""
        planned = self.plan(self.input_model.model_validate(job_input))
        return next((spec for spec in planned if spec.name == stage), None)
