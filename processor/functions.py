"""The stage functions the catalog's pipelines name, imported and checked when the processor
starts: a pipeline whose plan names a function that does not exist stops the start, rather than
failing jobs later with UNKNOWN_STAGE."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from jobs.contract.pipeline import PipelineSpec
from processor.context import StageContext

StageFn = Callable[[StageContext], Coroutine[Any, Any, Any]]
ResultFn = Callable[[dict[str, Any]], dict[str, Any]]


class PipelineNotRunnable(Exception):
    """A pipeline names a function this processor cannot import."""


@dataclass(frozen=True)
class StageFunctions:
    """Every function a processor runs, by "module:function" as the catalog names them."""

    by_name: dict[str, Callable[..., Any]]

    def stage(self, name: str) -> StageFn | None:
        function: StageFn | None = self.by_name.get(name)
        return function

    def result(self, name: str) -> ResultFn:
        function: ResultFn = self.by_name[name]
        return function


def load(pipelines: Iterable[PipelineSpec]) -> StageFunctions:
    """Import every stage and result function the pipelines name (as their example inputs plan
    them); PipelineNotRunnable lists each one that cannot be imported."""
    names: set[str] = set()
    for spec in pipelines:
        names.update(spec.functions())
    found: dict[str, Callable[..., Any]] = {}
    missing: list[str] = []
    for name in sorted(names):
        function = _import(name)
        if function is None:
            missing.append(name)
        else:
            found[name] = function
    if missing:
        raise PipelineNotRunnable(f"No such stage functions: {', '.join(missing)}")
    return StageFunctions(found)


def _import(name: str) -> Callable[..., Any] | None:
    module_name, _, attribute = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    function = getattr(module, attribute, None)
    return function if callable(function) else None
