"""Timing whole processes: median wall time over several runs and the child's peak RSS (from wait4)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

PY = sys.executable


@dataclass(frozen=True)
class Measure:
    label: str
    median_s: float
    runs: list[float]
    peak_rss_mib: float


def measure(
    label: str,
    argv: list[str],
    runs: int = 5,
    warmup: int = 1,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> Measure:
    """Run `argv` `warmup + runs` times (in `cwd`); the page cache is warm for every run (same for the peer)."""
    times: list[float] = []
    peak = 0.0
    full_env = dict(os.environ, **(env or {}))
    for i in range(warmup + runs):
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=full_env, cwd=cwd)
        _pid, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t0
        err = proc.stderr.read().decode() if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{label} failed: {err.strip()[-500:]}")
        if i >= warmup:
            times.append(elapsed)
            peak = max(peak, usage.ru_maxrss / 1024)  # Linux: KiB
    return Measure(label, statistics.median(times), times, peak)


def compile_package(pkg: os.PathLike[str] | str | None = None) -> None:
    """Byte-compile the package first, as a wheel install does: with PYTHONDONTWRITEBYTECODE set (common in
    containers) an editable checkout would otherwise be recompiled from source on every run, while the peers
    (torch, onnx) import precompiled files from site-packages."""
    import compileall
    from pathlib import Path

    folder = Path(pkg) if pkg is not None else Path(__file__).resolve().parents[1] / "modelscope_inspect"
    compileall.compile_dir(str(folder), quiet=1)


def mi(*args: str) -> list[str]:
    return [PY, "-m", "modelscope_inspect", *args]


def table(rows: list[tuple[str, Measure, Measure | None]]) -> str:
    """Rows of (case, ours, peer): medians, peak RSS and the speed-up ratio peer/ours."""
    out = [f"{'case':<44} {'mi s':>8} {'mi MiB':>8} {'peer s':>8} {'peer MiB':>9} {'speed-up':>9}"]
    for case, ours, peer in rows:
        if peer is None:
            out.append(f"{case:<44} {ours.median_s:8.3f} {ours.peak_rss_mib:8.1f} {'':>8} {'':>9} {'':>9}")
        else:
            ratio = peer.median_s / ours.median_s
            out.append(
                f"{case:<44} {ours.median_s:8.3f} {ours.peak_rss_mib:8.1f} {peer.median_s:8.3f} "
                f"{peer.peak_rss_mib:9.1f} {ratio:8.1f}x"
            )
    return "\n".join(out)
