"""Who is calling.

The API does not authenticate callers yet: every caller is the one user `anonymous`, and the
README's security section says so. Routes already take the caller from here, so owner scoping
needs no route changes once Firebase Auth verification is added.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

ANONYMOUS = "anonymous"


async def _current_user() -> str:
    return ANONYMOUS


UserDep = Annotated[str, Depends(_current_user)]
