"""Every benchmark in one run: `make bench` (or `python benchmarks/run.py`).

Each suite is a script in this folder that generates its inputs in a temp folder, times `mi` and the peer tool
as whole processes (median of several runs, peak RSS from wait4), and prints ratios. Suites whose script is
missing are skipped. `--json DIR` keeps each suite's JSON record.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUITES = ["bench_startup.py", "bench_inspect.py", "bench_onnx.py", "bench_remote.py"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", type=Path, help="folder for each suite's JSON record")
    ap.add_argument("--only", nargs="*", help="suite names to run (default: all)")
    args = ap.parse_args()
    failed = 0
    for suite in SUITES:
        script = HERE / suite
        if args.only and script.stem not in args.only and suite not in args.only:
            continue
        if not script.exists():
            print(f"== {suite}: not present, skipped\n")
            continue
        print(f"== {suite}", flush=True)
        cmd = [sys.executable, str(script)]
        if args.json and '"--json"' in script.read_text():
            args.json.mkdir(parents=True, exist_ok=True)
            cmd += ["--json", str(args.json / f"{script.stem}.json")]
        failed += subprocess.run(cmd).returncode != 0
        print(flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
