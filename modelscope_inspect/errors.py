"""One exception hierarchy for everything `mi` reports to users.

Messages say what went wrong, where (the file), which rule failed and, where useful, what to do.
The CLI turns any `InspectError` into one red line on stderr and exit code `exit_code`.
"""

from __future__ import annotations

# Exit codes, the picklescan contract: 0 ok, 1 a check/scan found a problem, 2 usage or unreadable input.
EXIT_OK = 0
EXIT_FOUND = 1
EXIT_UNREADABLE = 2


class InspectError(Exception):
    """Base class: a problem the user can act on. `str(err)` is the one-line message."""

    exit_code = EXIT_UNREADABLE

    def __init__(self, message: str, *, path: str | None = None, rule: str | None = None) -> None:
        self.path = path
        self.rule = rule
        self.message = message
        parts = []
        if path:
            parts.append(f"{path}:")
        if rule:
            parts.append(f"[{rule}]")
        parts.append(message)
        super().__init__(" ".join(parts))


class UsageError(InspectError):
    """Options that do not make sense together or values out of range."""


class NotFoundError(InspectError):
    """The path does not exist or holds no model file."""


class UnsupportedFormatError(InspectError):
    """No registered reader recognises the file."""


class MalformedFileError(InspectError):
    """The file claims to be a known format but breaks one of its rules (the `rule` names which)."""


class UnsafePickleError(InspectError):
    """A pickle refers to a global outside the allowlist; it is reported, never imported or called."""


class LimitExceededError(MalformedFileError):
    """A declared size or count is beyond what we are willing to read (zip bomb, lying lengths, deep nesting)."""


class MissingDependencyError(InspectError):
    """An optional extra this command needs is not installed (the message names the extra)."""


class RemoteError(InspectError):
    """The server or the network failed us: unreachable, wrong status, or a response that lies about its bytes."""


class AccessDeniedError(RemoteError):
    """HTTP 401 / 403: a token is missing, refused, or lacks access (gated or private repository)."""


class RenderError(InspectError):
    """Graphviz is missing, failed, or took too long."""


class RebuildError(InspectError):
    """The model cannot be rebuilt or exported."""
