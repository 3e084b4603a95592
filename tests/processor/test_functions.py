"""A pipeline is declared once (its spec names each stage's function), and a processor that
cannot import one of them refuses to start instead of failing jobs later."""

from __future__ import annotations

import re

import pytest
from pydantic import BaseModel

from jobs.contract.pipeline import PipelineSpec, StageSpec
from jobs.contract.settings import Settings
from pipelines.catalog import PIPELINES
from processor import functions
from processor.app import create_app


class NoInput(BaseModel):
    pass


def spec_naming(function: str) -> PipelineSpec:
    return PipelineSpec(
        name="broken",
        description="Names a stage function that does not exist.",
        input_model=NoInput,
        plan=lambda _params: [StageSpec("only", function, "Only")],
        example_input={},
        result="pipelines.diagnostic.stages:result",
    )


def test_every_stage_the_catalog_plans_has_a_function() -> None:
    loaded = functions.load(PIPELINES.values())

    for spec in PIPELINES.values():
        for stage in spec.example_stages():
            assert loaded.stage(stage.function) is not None, stage.name


@pytest.mark.parametrize(
    "function",
    [
        "pipelines.media.stages:no_such_stage",
        "processor.functions.no_such_module:probe",
        "pipelines.media.stages:STAGE_TIMEOUT_NOT_CALLABLE",
    ],
)
def test_a_missing_stage_function_is_named_when_loading(function: str) -> None:
    with pytest.raises(functions.PipelineNotRunnable, match=re.escape(function)):
        functions.load([spec_naming(function)])


def test_the_processor_refuses_to_start_over_a_missing_stage_function(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(PIPELINES, "broken", spec_naming("processor.functions:nothing"))

    with pytest.raises(functions.PipelineNotRunnable, match=r"processor\.functions:nothing"):
        create_app(Settings())
