"""`mi scan --jsonl` over many small files against picklescan and modelscan, in the same run: files per second and
peak RSS (whole processes, median of runs, warm page cache for everyone).

python benchmarks/bench_scan_batch.py [--runs 3] [--files 1000] [--models 100] [--json out.json]

Cases: 1,000 small torch files written by `torch.save` in one folder (`mi scan --jsonl DIR`, and the same files
as 1,000 targets of `--from`), and a folder of 100 sharded safetensors models (index + 2 shards + config each).
The peers are not dependencies of the project: install them into a virtual environment of their own
(`python3 -m venv /work/benchvenv && /work/benchvenv/bin/pip install picklescan modelscan`) and point
`MI_BENCH_PEERS` at its `bin` folder (default /work/benchvenv/bin, then PATH); a peer that is absent is skipped
and the script says so. Each row prints the peer's exit code beside ours, to compare verdicts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import compile_package, mi

ROOT = Path(__file__).resolve().parents[1]


def peer(name: str) -> str | None:
    folder = Path(os.environ.get("MI_BENCH_PEERS", "/work/benchvenv/bin"))
    if (folder / name).is_file():
        return str(folder / name)
    return shutil.which(name)


def run(argv: list[str], runs: int) -> tuple[float, float, int]:
    """(median seconds, peak RSS MiB, exit code) over `runs` runs after one warm-up; any exit code is kept."""
    times: list[float] = []
    peak = 0.0
    code = 0
    for i in range(1 + runs):
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        _pid, status, usage = os.wait4(proc.pid, 0)
        if i:
            times.append(time.perf_counter() - t0)
            peak = max(peak, usage.ru_maxrss / 1024)
        code = os.waitstatus_to_exitcode(status)
    return statistics.median(times), peak, code


def make_torch_files(folder: Path, n: int) -> list[Path]:
    import torch

    folder.mkdir(parents=True)
    out = []
    for i in range(n):
        p = folder / f"ckpt_{i:04d}.pt"
        torch.save({"w": torch.full((4, 4), float(i)), "b": torch.zeros(4), "step": i}, p)
        out.append(p)
    return out


def make_safetensors_models(folder: Path, n: int) -> int:
    """`n` model folders, each: config.json, model.safetensors.index.json and two shards. Returns the file count."""
    import torch
    from safetensors.torch import save_file

    files = 0
    for i in range(n):
        m = folder / f"model_{i:03d}"
        m.mkdir(parents=True)
        weight_map = {}
        for s in (1, 2):
            shard = f"model-0000{s}-of-00002.safetensors"
            tensors = {f"layers.{s}.{k}": torch.zeros(8, 8) for k in ("q", "k", "v")}
            save_file(tensors, m / shard)
            weight_map.update(dict.fromkeys(tensors, shard))
        (m / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
        (m / "config.json").write_text(json.dumps({"model_type": "llama"}))
        files += 4
    return files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--models", type=int, default=100)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--make", type=Path, help=argparse.SUPPRESS)  # internal: write the files into this folder
    args = ap.parse_args()
    if args.make is not None:
        make_torch_files(args.make / "torch", args.files)
        make_safetensors_models(args.make / "st", args.models)
        return
    compile_package()
    peers = {name: peer(name) for name in ("picklescan", "modelscan")}
    for name, path in peers.items():
        print(f"{name}: {path}" if path else f"{name}: not found (set MI_BENCH_PEERS to its bin folder); skipped")
    with tempfile.TemporaryDirectory(prefix="mi-bench-scan-") as tmp:
        t = Path(tmp)
        # Written by a child process: a child forked from a parent that imported torch would start with the
        # parent's RSS, and wait4's peak of every measured process would be torch's, not its own.
        make = [sys.executable, __file__, "--make", str(t), "--files", str(args.files), "--models", str(args.models)]
        subprocess.run(make, check=True)
        torch_files = sorted((t / "torch").iterdir())
        targets = t / "targets.txt"
        targets.write_text("".join(f"{p}\n" for p in torch_files))
        n_st = 4 * args.models
        cases: list[tuple[str, int, list[str], dict[str, list[str]]]] = [
            (
                f"{args.files} torch files, one folder",
                args.files,
                mi("scan", "--jsonl", str(t / "torch")),
                {"picklescan": ["-p", str(t / "torch")], "modelscan": ["-p", str(t / "torch")]},
            ),
            (
                f"{args.files} torch files as --from targets",
                args.files,
                mi("scan", "--jsonl", "--from", str(targets)),
                {},
            ),
            (
                f"{args.models} sharded safetensors models",
                n_st,
                mi("scan", "--jsonl", str(t / "st")),
                {"picklescan": ["-p", str(t / "st")], "modelscan": ["-p", str(t / "st")]},
            ),
        ]
        rows = []
        for label, n, ours, theirs in cases:
            s, mib, code = run(ours, args.runs)
            row = {"case": label, "files": n, "mi": {"s": s, "files_per_s": n / s, "peak_mib": mib, "exit": code}}
            for name, extra in theirs.items():
                exe = peers[name]
                if exe is None:
                    continue
                ps, pmib, pcode = run([exe, *extra], args.runs)
                row[name] = {"s": ps, "files_per_s": n / ps, "peak_mib": pmib, "exit": pcode}
            rows.append(row)
    head = f"{'case':<38} {'tool':<11} {'files/s':>9} {'peak MiB':>9} {'exit':>5} {'mi speed-up':>12}"
    print(head)
    for row in rows:
        for tool in ("mi", "picklescan", "modelscan"):
            if tool not in row:
                continue
            r = row[tool]
            ratio = "" if tool == "mi" else f"{row['mi']['files_per_s'] / r['files_per_s']:.2f}x"
            print(
                f"{row['case']:<38} {tool:<11} {r['files_per_s']:9.0f} {r['peak_mib']:9.1f} {r['exit']:5d} {ratio:>12}"
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
