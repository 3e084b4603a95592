"""The scale benchmark, run small: every job succeeds, items fan out, and the report has every
figure the results table and the README's estimate read (no wall-clock limits)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.scale import QUICK, markdown_rows, run
from pipelines.media.spans import WINDOW_SECONDS


# Four stacks, one after another, each starting its own processor processes.
@pytest.mark.timeout(900)
def test_a_small_scale_run_reports_every_figure(tmp_path: Path) -> None:
    report = run(tmp_path / "work", QUICK, cache=tmp_path / "cache")

    runs = report["runs"]
    assert set(runs) == {"one", "two", "third", "audio"}
    assert all(job["succeeded"] for job in runs.values())
    assert runs["one"]["items"] == {"audio": 2, "scenes": 2}
    assert runs["third"]["items"] == {"audio": 1, "scenes": 1}
    assert runs["audio"]["items"] == {"audio": 2, "scenes": 0}
    assert len(runs["two"]["processes"]) == 2
    assert all(job["redelivered"] == 0 for job in runs.values())
    assert 0 < runs["one"]["bytes_read_mib"]["min"] <= runs["one"]["bytes_read_mib"]["max"]
    assert runs["audio"]["artifact"]["status"] == 200
    assert runs["audio"]["artifact"]["windows"] == 0.3 * 3600 / WINDOW_SECONDS
    assert set(report["figures"]) >= {
        "scaling_efficiency",
        "cpu_over_threaded_decode",
        "peak_rss_full_over_third",
        "longrun_cpu_factor",
    }
    assert [row["instances"] for row in report["projection"]["rows"]] == [1, 10, 50]
    assert len(markdown_rows(report)) == 5
