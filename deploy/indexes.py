"""Turn deploy/firestore.indexes.json into `gcloud firestore indexes composite create` arguments.

The JSON file (the Firebase CLI's format) is the one list of composite indexes; setup.sh asks
this module which of them the project lacks, so re-running setup creates only what is missing.
Standard library only: it runs wherever gcloud does (Cloud Shell, Cloud Build's gcloud image).

    python3 -m deploy.indexes deploy/firestore.indexes.json [EXISTING_JSON]

prints one line per missing index: its create flags, tab-separated.
EXISTING_JSON is `gcloud firestore indexes composite list --format=json` output.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# Firestore adds this field to every index it lists; a declared index never names it.
_IMPLICIT = "__name__"

Signature = tuple[str, str, tuple[tuple[str, str], ...]]


def _field_order(field: dict[str, Any]) -> str:
    if "arrayConfig" in field:
        return "array-config=" + str(field["arrayConfig"]).lower()
    return "order=" + str(field["order"]).lower()


def declared(indexes_json: dict[str, Any]) -> list[Signature]:
    """The composite indexes the file declares, as comparable signatures."""
    result: list[Signature] = []
    for index in indexes_json.get("indexes", []):
        fields = tuple((f["fieldPath"], _field_order(f)) for f in index["fields"])
        scope = str(index.get("queryScope", "COLLECTION")).lower().replace("_", "-")
        result.append((index["collectionGroup"], scope, fields))
    return result


def existing(listed: list[dict[str, Any]]) -> set[Signature]:
    """Signatures of the indexes `gcloud firestore indexes composite list --format=json` shows."""
    result: set[Signature] = set()
    for index in listed:
        # name: projects/P/databases/D/collectionGroups/G/indexes/ID
        group = str(index["name"]).split("/collectionGroups/")[1].split("/")[0]
        fields = tuple(
            (f["fieldPath"], _field_order(f))
            for f in index.get("fields", [])
            if f["fieldPath"] != _IMPLICIT
        )
        scope = str(index.get("queryScope", "COLLECTION")).lower().replace("_", "-")
        result.add((group, scope, fields))
    return result


def create_flags(signature: Signature) -> list[str]:
    """The flags that create one index (the collection group first)."""
    group, scope, fields = signature
    flags = [f"--collection-group={group}", f"--query-scope={scope}"]
    flags += [f"--field-config=field-path={path},{order}" for path, order in fields]
    return flags


def missing(indexes_json: dict[str, Any], listed: list[dict[str, Any]]) -> list[Signature]:
    have = existing(listed)
    return [signature for signature in declared(indexes_json) if signature not in have]


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        sys.stderr.write(__doc__ or "")
        return 2
    wanted = json.loads(Path(argv[1]).read_text())
    listed = json.loads(Path(argv[2]).read_text() or "[]") if len(argv) == 3 else []
    for signature in missing(wanted, listed):
        sys.stdout.write("\t".join(create_flags(signature)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
