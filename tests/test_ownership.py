"""One owner for the job and run documents: only the store (jobs.cloud.store) opens transactions
on them or names their paths; everyone else hands it a decision (JobStore.decide)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("jobs", "pipelines", "service", "processor", "cli", "deploy", "samples")
STORE = ROOT / "jobs" / "cloud" / "store.py"
# What only the store may call: transactions, and the references of job and run documents.
STORE_ONLY = {"transaction", "async_transactional", "transactional", "job_ref", "run_ref"}


def modules() -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def store_only_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in STORE_ONLY
    ]


def test_only_the_store_opens_transactions_or_names_job_documents() -> None:
    found = [use for path in modules() if path != STORE for use in store_only_uses(path)]

    assert found == []


def test_the_check_sees_a_transaction_where_there_is_one() -> None:
    assert store_only_uses(STORE), "the store itself must show up, or the check sees nothing"
