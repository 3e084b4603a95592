"""The layers are the folders, and imports only go down them:

    jobs.contract      what both services agree on (models, transitions, runs, errors, specs):
                       pydantic and the standard library only, no Google or HTTP framework
    jobs.telemetry     logs, traces, problem responses          → contract
    jobs.cloud         Firestore, Pub/Sub, Storage, Auth        → contract, telemetry
    pipelines.*.spec   a pipeline's input and plan (the API imports only these) → contract
    service            the API                                   → jobs, pipeline specs
    processor          the stage runner                          → jobs, pipeline specs
    pipelines (stages) stage code                                → jobs, pipelines, processor.stage

The processor finds stage code by the names in the specs (processor.functions), never by import,
so the API never loads a decoder and stage code never reaches into the runner.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("jobs", "pipelines", "service", "processor", "deploy", "cli", "samples", "benchmarks")
HEAVY = ("google", "grpc", "fastapi", "starlette", "opentelemetry", "firebase_admin", "httpx", "av")
SPEC_MODULES = ("pipelines", "pipelines.catalog")

# Layer of a module → the layers it may import from (besides its own and the standard library).
ALLOWED: dict[str, set[str]] = {
    "contract": set(),
    "spec": {"contract"},
    "telemetry": {"contract"},
    "cloud": {"contract", "telemetry"},
    "service": {"contract", "telemetry", "cloud", "spec", "samples"},
    "processor": {"contract", "telemetry", "cloud", "spec"},
    "stage-api": {"contract", "telemetry", "cloud", "spec", "processor"},
    "stages": {"contract", "telemetry", "cloud", "spec", "stage-api"},
    "samples": set(),
    "deploy": {"contract", "telemetry", "cloud", "spec", "service", "processor"},
    "cli": {"contract", "telemetry", "cloud", "spec", "deploy", "samples"},
    # A benchmark may also measure an analysis by itself, outside any stack (the transcription
    # engine's accuracy and speed); the API and the processor still never import stage code.
    "benchmarks": {"contract", "telemetry", "cloud", "spec", "deploy", "cli", "samples", "stages"},
}
# Layers that must stay free of Google's clients and HTTP frameworks.
LIGHT = {"contract", "spec"}


def layer(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "jobs" and len(parts) > 1:
        return parts[1]
    if parts[0] == "pipelines":
        is_spec = module in SPEC_MODULES or parts[-1] == "spec" or len(parts) == 2
        return "spec" if is_spec else "stages"
    if module == "processor.stage":
        return "stage-api"
    return parts[0]


def module_name(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


def imports(path: Path) -> Iterator[str]:
    """Every module `path` imports by name (the targets of `from a.b import c` included)."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def first_party(name: str) -> str | None:
    """The first-party module `name` refers to (a name imported from a module is the module)."""
    parts = name.split(".")
    while parts:
        candidate = ROOT.joinpath(*parts)
        if candidate.with_suffix(".py").exists() or (candidate / "__init__.py").exists():
            return ".".join(parts)
        parts.pop()
    return None


def wrong_way(path: Path, module: str | None = None) -> list[str]:
    """The imports of `path` (judged as `module`, by default its own name) that go up a layer."""
    module = module or module_name(path)
    own = layer(module)
    found = []
    for name in imports(path):
        if name.split(".")[0] in PACKAGES:
            target = first_party(name)
            if target is None:
                continue
            theirs = layer(target)
            if theirs != own and theirs not in ALLOWED[own]:
                found.append(f"{module} ({own}) imports {target} ({theirs})")
        elif own in LIGHT and name.split(".")[0] in HEAVY:
            found.append(f"{module} ({own}) imports {name}")
    return found


def sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_every_import_goes_down_the_layers() -> None:
    found = sorted({edge for path in sources() for edge in wrong_way(path)})

    assert found == []


@pytest.mark.parametrize(
    ("source", "importing", "layer_name"),
    [
        ("jobs/contract/models.py", "from jobs.cloud.store import JobStore", "cloud"),
        ("jobs/contract/models.py", "from google.cloud import firestore", "google"),
        ("service/app.py", "from processor.runner import run_stage", "processor"),
        ("service/app.py", "from pipelines.media.audio import analyse_audio", "stages"),
        ("pipelines/media/audio.py", "from processor.runner import run_stage", "processor"),
    ],
)
def test_the_check_catches_an_import_that_goes_up(
    tmp_path: Path, source: str, importing: str, layer_name: str
) -> None:
    planted = ROOT / source
    text = planted.read_text()
    copy = tmp_path / "copy.py"
    copy.write_text(f"{importing}\n{text}")

    found = [edge for edge in wrong_way(copy, module_name(planted)) if layer_name in edge]

    assert found, f"planting {importing!r} in {source} went unnoticed"
