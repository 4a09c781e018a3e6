"""The `--json` documents, one builder per command, all in one envelope: `schema_version` first, then `command`.

Every key is documented in the README; `schema_version` is bumped on incompatible changes.
"""

from __future__ import annotations

from typing import Any

SCHEMA_VERSION = 1


def envelope(command: str, **body: Any) -> dict[str, Any]:
    """`{"schema_version": 1, "command": command, **body}`: the head every document starts with."""
    return {"schema_version": SCHEMA_VERSION, "command": command, **body}
