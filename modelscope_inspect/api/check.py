"""`check`: paths (or the files a pyproject's globs name) measured against their budgets."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InspectError, UsageError
from .paths import is_url

if TYPE_CHECKING:
    from ..analysis.check import Budget, CheckReport, Config, PathResult


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above `start` (stops at a `.git` folder or the root)."""
    cur = start.resolve()
    for folder in (cur, *cur.parents):
        cand = folder / "pyproject.toml"
        if cand.is_file():
            return cand
        if (folder / ".git").exists():
            return None
    return None


def open_check_config(pyproject: Path) -> Config | None:
    """`[tool.mi.check]` from a pyproject.toml, or None when it has no such table."""
    from ..analysis.check import config_from_toml

    display = str(pyproject)
    try:
        raw = pyproject.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read: {exc.strerror or exc}", path=display) from None
    return config_from_toml(raw, display, pyproject.parent)


def globbed_paths(config: Config) -> list[Path]:
    """Files and folders matched by the per-glob tables (what `mi check` with no PATH checks)."""
    found: dict[Path, None] = {}
    for pattern, _ in config.per_glob:
        for p in sorted(config.root.glob(pattern)):
            if p.is_file() or p.is_dir():
                found.setdefault(p, None)
    return list(found)


def _glob_key(config: Config, target: Path | str) -> tuple[str, str | None]:
    """What globs match for one target: a URL whole; a path relative to the pyproject's folder, and its name."""
    if isinstance(target, str):
        return target, None
    try:
        rel = target.resolve().relative_to(config.root.resolve()).as_posix()
    except ValueError:
        rel = target.as_posix()
    return rel, target.name


def budget_for(config: Config, target: Path | str) -> Budget:
    """The budget of one target: a URL matches globs whole, a path relative to the pyproject's folder."""
    return config.budget_for(*_glob_key(config, target))


def _on_disk(config: Config, pattern: str) -> bool:
    try:
        return any(p.is_file() or p.is_dir() for p in config.root.glob(pattern))
    except (ValueError, NotImplementedError, OSError):  # an absolute or malformed pattern matches nothing
        return False


def check_globs(config: Config, targets: list[Path | str]) -> None:
    """Refuse a `[tool.mi.check."GLOB"]` table whose glob matches neither a checked path nor any file under the
    pyproject's folder (a typo would leave its budget unchecked), unless the table says `allow-empty = true`."""
    keys = [_glob_key(config, t) for t in targets]
    from ..analysis.check import glob_matches

    empty = [
        pattern
        for pattern, _ in config.per_glob
        if pattern not in config.allow_empty
        and not any(glob_matches(pattern, key, name) for key, name in keys)
        and not _on_disk(config, pattern)
    ]
    if empty:
        tables = ", ".join(f'[tool.mi.check."{p}"]' for p in empty)
        raise UsageError(
            f"{tables} match{'es' if len(empty) == 1 else ''} no file under {config.root}; fix the glob or add "
            "allow-empty = true to the table",
            path=config.path,
            rule="config-glob",
        )


def _is_pickle_file(path: str, endpoint: str | None, token: str | None) -> bool:
    """True when `mi scan` finds pickle streams in `path` (used when the readers refuse the file)."""
    from ..analysis.check import PICKLE_FORMATS
    from .scan import scan_paths

    try:
        report = scan_paths(path, endpoint=endpoint, token=token)
    except InspectError:
        return False
    return any(f.streams or f.format in PICKLE_FORMATS for f in report.files)


def check_path(
    path: str, budget: Budget, source: str = "flags", *, endpoint: str | None = None, token: str | None = None
) -> PathResult:
    """Load `path` (a URL too: sizes are the remote files') and check it.

    A pickle refused as unsafe fails `--forbid-pickle` instead of being unreadable.
    """
    from ..analysis.check import PathResult, RuleResult, check_inventory
    from ..errors import UnsafePickleError
    from .model import open_model

    try:
        inv = open_model(path, endpoint=endpoint, token=token)
    except InspectError as exc:
        if not budget.forbid_pickle or not (
            isinstance(exc, UnsafePickleError) or _is_pickle_file(path, endpoint, token)
        ):
            raise
        rule = RuleResult(
            "forbid-pickle", "pickle", "no pickle", False, "unsafe globals; run `mi scan` for details", refused=True
        )
        return PathResult(path, (rule,), budget_source=source)
    return PathResult(
        path,
        check_inventory(inv, budget),
        budget_source=source,
        bytes_read=inv.read.bytes_read if inv.read is not None else None,
    )


def check_paths(
    paths: list[str],
    flags: Budget,
    pyproject: Path | None = None,
    *,
    use_config: bool = True,
    endpoint: str | None = None,
    token: str | None = None,
) -> CheckReport:
    """Check every path against its budget (pyproject defaults and globs, then flags on top).

    With no paths, checks the files the pyproject's glob tables match; a glob that matches no file is a
    `UsageError` unless its table allows it. A path that cannot be read (or a `max-share` group that matches
    none of its tensors) is an error in the report; the other paths are still checked.

    Example:
        >>> from modelscope_inspect.analysis.check import Budget  # doctest: +SKIP
        >>> check_paths(["model.safetensors"], Budget(max_params=200_000_000)).passed  # doctest: +SKIP
        True
    """
    from ..analysis.check import CheckReport, PathResult

    config = None
    if use_config:
        found = pyproject if pyproject is not None else find_pyproject(Path.cwd())
        if found is not None:
            config = open_check_config(found)
        elif pyproject is not None:
            raise UsageError("config file not found", path=str(pyproject))
    # URLs stay strings (Path would collapse `//`); `endpoint` / `token` apply to them.
    targets: list[Path | str] = [p if is_url(p) else Path(p) for p in paths]
    if not targets:
        if config is None:
            raise UsageError("no PATH given and no [tool.mi.check] table in pyproject.toml")
        targets = list(globbed_paths(config))
        check_globs(config, targets)  # names the glob that matches nothing
        if not targets:
            raise UsageError(f"no PATH given and no file matches the globs of {config.path}")
    elif config is not None:
        check_globs(config, targets)
    results: list[PathResult] = []
    budgets = [(t, budget_for(config, t).merged(flags) if config else flags) for t in targets]
    if all(b.empty for _, b in budgets):
        raise UsageError(
            "no budget applies: give --max-size/--max-params/… or a [tool.mi.check] table in pyproject.toml",
            path=str(targets[0]) if len(targets) == 1 else None,
        )
    for t, budget in budgets:
        source = "flags" if config is None else ("flags + " + config.path if not flags.empty else config.path)
        if budget.empty:
            # A file no glob and no default covers (pre-commit passes every staged model file): nothing to check.
            results.append(PathResult(str(t), (), budget_source="no budget applies"))
            continue
        # A path that cannot be read, or a rule that cannot apply to it (a share group that matches no
        # tensor), is that path's error: the report (and `--json`) still says what happened to each path.
        try:
            results.append(check_path(str(t), budget, source, endpoint=endpoint, token=token))
        except InspectError as exc:
            results.append(PathResult(str(t), error=str(exc), budget_source=source))
    return CheckReport(tuple(results))
