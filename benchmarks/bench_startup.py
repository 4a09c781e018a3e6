"""Start-up cost of the commands that must stay light: whole process, median of runs, against bare Python.

python benchmarks/bench_startup.py [--runs 7] [--json out.json] [--baseline DIR]

`--baseline DIR` measures the same command lines on another checkout too (e.g. `git worktree add DIR HEAD~3`),
in the same run and interleaved case by case, so a change's start-up cost is read against its parent on
one machine at one time; `python -m modelscope_inspect` runs in each tree's folder and imports that tree.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import PY, Measure, compile_package, measure, mi, table

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--baseline", type=Path, help="another checkout to measure alongside (before/after)")
    args = ap.parse_args()
    compile_package()
    if args.baseline is not None:
        compile_package(args.baseline / "modelscope_inspect")
    cases: list[tuple[str, list[str]]] = [
        ("python -c pass (floor)", [PY, "-c", "pass"]),
        ("python -c 'import typer, rich.console'", [PY, "-c", "import typer, rich.console"]),
        ("mi --help", mi("--help")),
        ("mi inspect examples/tiny-gpt2 --json", mi("inspect", str(ROOT / "examples/tiny-gpt2"), "--json")),
        ("mi inspect examples/tiny-gpt2 (tables)", mi("inspect", str(ROOT / "examples/tiny-gpt2"))),
    ]
    cases.append(("mi params (seed formula)", mi("params", "--vocab", "168283", "--d-model", "512", "--layers", "6")))
    cases.append(
        ("mi params --config (gpt2 json)", mi("params", "--config", str(ROOT / "examples/tiny-gpt2/config.json")))
    )
    cases.append(
        ("mi memory --config (gpt2 json)", mi("memory", "--config", str(ROOT / "examples/tiny-gpt2/config.json")))
    )
    rows: list[tuple[str, Measure, Measure | None]] = []
    for label, argv in cases:
        try:
            ours = measure(label, argv, args.runs, cwd=ROOT)
            base = measure(label, argv, args.runs, cwd=args.baseline) if args.baseline is not None else None
            rows.append((label, ours, base))
        except RuntimeError as exc:
            print(f"skipped {label}: {exc}", file=sys.stderr)
    if args.baseline is not None:
        print(f"peer = the same command in {args.baseline} (baseline); speed-up > 1 means this tree is faster")
    print(table(rows))
    if args.json:
        doc = [{"case": c, "mi_s": m.median_s, "peak_mib": m.peak_rss_mib} for c, m, _ in rows]
        args.json.write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
