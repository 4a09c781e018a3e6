"""Start-up cost of the commands that must stay light: whole process, median of runs, against bare Python.

python benchmarks/bench_startup.py [--runs 7] [--json out.json]
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
    args = ap.parse_args()
    compile_package()
    cases: list[tuple[str, list[str]]] = [
        ("python -c pass (floor)", [PY, "-c", "pass"]),
        ("python -c 'import typer, rich.console'", [PY, "-c", "import typer, rich.console"]),
        ("mi --help", mi("--help")),
        ("mi inspect examples/tiny-gpt2 --json", mi("inspect", str(ROOT / "examples/tiny-gpt2"), "--json")),
        ("mi inspect examples/tiny-gpt2 (tables)", mi("inspect", str(ROOT / "examples/tiny-gpt2"))),
    ]
    commands = {p.stem for p in (ROOT / "modelscope_inspect" / "commands").glob("*.py")}
    if "params" in commands:
        cases.append(
            ("mi params (seed formula)", mi("params", "--vocab", "168283", "--d-model", "512", "--layers", "6"))
        )
        cases.append(
            ("mi params --config (gpt2 json)", mi("params", "--config", str(ROOT / "examples/tiny-gpt2/config.json")))
        )
    if "memory" in commands:
        cases.append(
            ("mi memory --config (gpt2 json)", mi("memory", "--config", str(ROOT / "examples/tiny-gpt2/config.json")))
        )
    rows: list[tuple[str, Measure, Measure | None]] = []
    for label, argv in cases:
        try:
            rows.append((label, measure(label, argv, args.runs), None))
        except RuntimeError as exc:
            print(f"skipped {label}: {exc}", file=sys.stderr)
    print(table(rows))
    if args.json:
        doc = [{"case": c, "mi_s": m.median_s, "peak_mib": m.peak_rss_mib} for c, m, _ in rows]
        args.json.write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
