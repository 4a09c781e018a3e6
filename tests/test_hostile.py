"""Hostile and malformed input against every command, run as real processes (tests/hostile/harness.py).

Every command gets every crafted entry of `tests/hostile/corpus.py` (built into a temp folder here) and must
answer with exactly one line on stderr naming the file, exit 2, within a few seconds, under a 1 GiB address-space
limit, leaving the file unchanged. Exploit pickles are in tests/test_hostile_exploits.py.

Permission denied cannot be produced for root (CAP_DAC_OVERRIDE reads anything): the process test is skipped
when running as root, and the in-process test below covers the message by making `os.open` refuse.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, run_cli
from tests.hostile.corpus import Case, malformed_cases
from tests.hostile.harness import COMMANDS, FAST, fingerprint, run_all, run_limited

# Built once when the module is collected (a few MB in a temp folder, removed at exit): the parametrized
# tests need the case names, and building twice would double the cost.
_TMP = Path(tempfile.mkdtemp(prefix="mi-hostile-"))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)
CORPUS = {c.name: c for c in malformed_cases(_TMP / "malformed")}


@pytest.fixture(scope="module")
def corpus() -> dict[str, Case]:
    return CORPUS


MALFORMED = list(CORPUS)


def _loader_present(fmt: str | None) -> bool:
    return fmt is None or importlib.util.find_spec(f"modelscope_inspect.loaders.{fmt}") is not None


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n == "pth_zip_bomb" else n for n in MALFORMED]
)
def test_malformed_every_command(corpus: dict[str, Case], name: str) -> None:
    case = corpus[name]
    if not _loader_present(case.loader):
        pytest.skip(f"{case.loader} reader not written yet")
    before = fingerprint(case.path)
    label = case.path.name
    problems = []
    for cmd, run in run_all(case.path).items():
        lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
        expected = case.scan_exit if cmd == "scan" else 2
        ok = run.exit == expected and run.leaked is None and "Traceback" not in run.stderr and run.seconds < FAST
        if expected == 2:
            ok = ok and len(lines) == 1 and lines[0].startswith("error:") and label in lines[0]
        if not ok:
            problems.append(
                f"{cmd}: exit {run.exit} in {run.seconds:.1f}s, {run.leaked or ''} stderr={run.stderr[:400]!r}"
            )
    assert fingerprint(case.path) == before, "the input was modified"
    assert not problems, f"{case.what} ({case.path}):\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "name",
    ["pkl_deep_tuple_key", "fifo", "dev_zero", "st_len_huge", pytest.param("pth_zip_bomb", marks=pytest.mark.slow)],
)
def test_real_processes(corpus: dict[str, Case], name: str) -> None:
    """The same through the real entry point (`python -m modelscope_inspect`), for the nastiest entries."""
    case = corpus[name]
    for cmd in ("inspect", "scan"):
        r, took = run_limited(COMMANDS[cmd](str(case.path)))
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert r.returncode == 2 and len(lines) == 1 and case.path.name in lines[0], (cmd, r.stderr)
        assert took < FAST and "Traceback" not in r.stderr


def test_corpus_messages_name_the_rule(corpus: dict[str, Case]) -> None:
    """Spot checks that the one line says what is wrong, not just that something is."""
    expect = {
        "st_len_huge": ("inspect", "header-size"),
        "st_shape_overflow": ("inspect", "overflow"),
        "st_offsets_past_end": ("inspect", "offsets"),
        "st_overlap": ("inspect", "overlap"),
        "st_deep_json": ("inspect", "deep"),
        "pth_zip_bomb": ("scan", "zip bomb"),
        "pkl_deep_tuple_key": ("scan", "nested too deeply"),
        "index_missing_shard": ("inspect", "does not exist"),
        "index_escape": ("inspect", "not a plain file name"),
        "fifo": ("inspect", "not a regular file"),
        "dev_zero": ("scan", "not a regular file"),
        "symlink_loop": ("check", "symbolic links"),
        "no_model_files": ("diff", "no model file"),
    }
    for name, (cmd, fragment) in expect.items():
        r = run_cli(*COMMANDS[cmd](str(corpus[name].path)))
        assert r.code == 2 and fragment in r.stderr.lower(), (name, r.stderr)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode; covered in-process below")
def test_permission_denied_process(tmp_path: Path) -> None:
    p = tmp_path / "locked.safetensors"
    p.write_bytes((FIXTURES / "tiny_seed.safetensors").read_bytes())
    p.chmod(0)
    for cmd, build in COMMANDS.items():
        r, _ = run_limited(build(str(p)))
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert r.returncode == 2 and len(lines) == 1 and "permission denied" in lines[0], (cmd, r.stderr)


@pytest.mark.parametrize("cmd", ["inspect", "scan", "check", "diff"])
def test_permission_denied_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cmd: str) -> None:
    p = tmp_path / "locked.safetensors"
    p.write_bytes((FIXTURES / "tiny_seed.safetensors").read_bytes())
    real_open = os.open

    def refuse(path: object, *a: object, **k: object) -> int:
        if str(path) == str(p):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refuse)
    r = run_cli(*COMMANDS[cmd](str(p)))
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.code == 2 and len(lines) == 1 and "permission denied" in lines[0] and p.name in lines[0], r.stderr
