"""Shared harness for the hostile-input tests: the command lines every command gets, a runner that executes
them in one process under a time limit and a 1 GiB address-space limit, and a content fingerprint to prove
inputs are left unchanged."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"

AS_LIMIT = 1 << 30  # 1 GiB of address space per command
TIMEOUT = 30  # seconds before a run counts as a hang
FAST = 10.0  # seconds a hostile input may take at most
OTHER = str(FIXTURES / "tiny_seed.safetensors")


def _has(module: str) -> bool:
    from modelscope_inspect.cli import COMMANDS as REGISTERED

    return module in {name for name, _fn in REGISTERED}


# The command line each command gets for a hostile PATH. Commands written by other helpers join when present.
COMMANDS: dict[str, Callable[[str], list[str]]] = {
    "inspect": lambda p: ["inspect", p],
    "scan": lambda p: ["scan", p],
    "check": lambda p: ["check", p, "--max-size", "10GB", "--no-config"],
    "diff": lambda p: ["diff", p, OTHER],
}
if _has("params"):
    COMMANDS["params"] = lambda p: ["params", "--config", p]
if _has("memory"):
    COMMANDS["memory"] = lambda p: ["memory", p]
if _has("graph"):
    COMMANDS["graph"] = lambda p: ["graph", p, "--dot"]


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ, COLUMNS="100", NO_COLOR="1", PYTHONPATH=str(ROOT))
    env.pop("MI_DEBUG", None)
    env.update(extra or {})
    return env


def run_limited(args: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    """`python -m modelscope_inspect ARGS` as a real process, 1 GiB address space, with a time limit."""
    t0 = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-m", "modelscope_inspect", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=child_env(env),
        preexec_fn=_limit,
        cwd=ROOT,
    )
    return r, time.monotonic() - t0


@dataclass
class Run:
    cmd: str
    exit: int
    stderr: str
    seconds: float
    leaked: str | None


def run_all(path: Path, env: dict[str, str] | None = None) -> dict[str, Run]:
    """Every command on `path` in one limited process (tests/hostile/driver.py); a crash or hang fails loudly."""
    argv = [COMMANDS[c](str(path)) for c in COMMANDS]
    r = subprocess.run(
        [sys.executable, "-m", "tests.hostile.driver", json.dumps(argv)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 2,
        env=child_env(env),
        preexec_fn=_limit,
        cwd=ROOT,
    )
    docs = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert r.returncode == 0 and len(docs) == len(COMMANDS), (
        f"driver died (exit {r.returncode}) after {len(docs)} of {len(COMMANDS)} commands "
        f"(next: {list(COMMANDS)[len(docs)] if len(docs) < len(COMMANDS) else '-'}): {r.stderr[-1000:]}"
    )
    return {
        c: Run(c, d["exit"], d["stderr"], d["seconds"], d["leaked_exception"])
        for c, d in zip(COMMANDS, docs, strict=True)
    }


def fingerprint(path: Path) -> str:
    """Content hash of a regular file, or of every regular file under a folder (symlinks not followed)."""
    h = hashlib.sha256()
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "missing"
    if stat.S_ISREG(st.st_mode):
        h.update(path.read_bytes())
    elif stat.S_ISDIR(st.st_mode):
        for p in sorted(path.rglob("*")):
            if p.is_symlink():
                h.update(f"{p}->{os.readlink(p)}".encode())
            elif p.is_file():
                h.update(p.name.encode() + p.read_bytes())
    else:
        h.update(f"{st.st_mode}:{st.st_size}".encode())
    return h.hexdigest()
