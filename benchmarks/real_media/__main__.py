"""The whole real-recording evaluation in one command: scene cuts against PySceneDetect, loudness
against pyloudnorm, then every real file through a whole job on emulators started for it.

    .venv/bin/python -m benchmarks.real_media [--work DIR] [--json FILE]

Each part also runs alone (`python -m benchmarks.real_media.cuts`, `.loudness`, `.chain`).
Fetched packages are kept in `--work` (default: a folder under the system's temp directory), so a
second run fetches nothing.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.environment import standalone
from benchmarks.real_media import chain, cuts, loudness


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="where fetched packages are kept")
    parser.add_argument("--json", type=Path, help="also write every result here, as JSON")
    args = parser.parse_args()
    work: Path = args.work or Path(tempfile.gettempdir()) / "longrun-real-media"
    results: dict[str, Any] = {
        "cuts": cuts.run(work / "cuts"),
        "loudness": loudness.run(work / "loudness"),
    }

    def whole_jobs(scratch: Path, _started: object) -> dict[str, Any]:
        results["chain"] = chain.run(scratch)
        return results

    standalone("real-media", args.json, whole_jobs)
    for part in (cuts, loudness, chain):
        print("\n".join(part.markdown_rows(results[part.__name__.rsplit(".", 1)[-1]])))


if __name__ == "__main__":
    main()
