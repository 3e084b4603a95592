"""What a pipeline is, as both services see it: its input model, the stages an input plans, and
where each stage's function lives.

A pipeline is declared once, here: each stage names its function as "module:function", so the
API plans jobs without importing any stage code (media decoders and all), and the processor
imports exactly those functions, checking them all when it starts (processor.functions).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from jobs.contract.models import StageState


class ItemFailure(StrEnum):
    """What an item that failed for good does to its stage."""

    FAIL = "fail"  # the stage, and so the job, fails
    GAP = "gap"  # the reduce runs without it (its output is None) and marks the gap


@dataclass(frozen=True)
class FanOut:
    """A stage that splits its work into items: its `function` returns `Items([...])`, each
    item runs `item` ("module:function") as its own message, under its own lease, on any
    processor instance; once every item has settled, `reduce` turns their outputs into the
    stage's output, exactly once."""

    item: str
    reduce: str
    on_item_failure: ItemFailure = ItemFailure.FAIL

    def functions(self) -> tuple[str, str]:
        return self.item, self.reduce


@dataclass(frozen=True)
class StageSpec:
    """A stage as planned: its name, the function that runs it ("module:function"), the label a
    UI shows, its share of progress, its limit (per attempt, also of each item and the reduce),
    the stages it reads (None: the one before it) and how it fans out, if it does."""

    name: str
    function: str
    label: str
    weight: float = 1.0
    timeout_seconds: float = 540.0
    needs: tuple[str, ...] | None = None
    fan_out: FanOut | None = None

    def initial_state(self) -> StageState:
        needs = None if self.needs is None else list(self.needs)
        return StageState(name=self.name, label=self.label, weight=self.weight, needs=needs)

    def functions(self) -> tuple[str, ...]:
        """Every function the stage may run."""
        return (self.function, *(self.fan_out.functions() if self.fan_out else ()))


def check_plan(stages: list[StageSpec]) -> None:
    """Raise ValueError unless each stage needs only stages planned before it (so the plan has
    no cycle, and plan order is an order the stages can run in)."""
    seen: set[str] = set()
    for stage in stages:
        if stage.name in seen:
            raise ValueError(f"stage {stage.name!r} is planned twice")
        unknown = [need for need in stage.needs or () if need not in seen]
        if unknown:
            raise ValueError(f"stage {stage.name!r} needs {unknown}, not planned before it")
        seen.add(stage.name)


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
    # More inputs whose plans, with the example's, name every function the pipeline may run:
    # the processor imports and checks them all when it starts.
    other_inputs: tuple[dict[str, Any], ...] = ()

    def estimate_cost(self, params: Any, compute_usd_per_second: float) -> float | None:
        """The job's expected cost in USD before it starts, if the pipeline can tell."""
        return self.estimate(params, compute_usd_per_second)

    def planned(self, params: Any) -> list[StageSpec]:
        """The stages `params` (a validated input) plans, checked to form no cycle."""
        stages = self.plan(params)
        check_plan(stages)
        return stages

    def example_stages(self) -> list[StageSpec]:
        """The stages planned for an example input, for listings."""
        return self.planned(self.input_model.model_validate(self.example_input))

    def functions(self) -> set[str]:
        """Every "module:function" the pipeline may run, as its example inputs plan it."""
        names = {self.result}
        for example in (self.example_input, *self.other_inputs):
            for stage in self.planned(self.input_model.model_validate(example)):
                names.update(stage.functions())
        return names

    def stage_spec(self, job_input: dict[str, Any], stage: str) -> StageSpec | None:
        """The named stage as this job's input plans it; None if the plan has no such stage."""
        planned = self.planned(self.input_model.model_validate(job_input))
        return next((spec for spec in planned if spec.name == stage), None)
