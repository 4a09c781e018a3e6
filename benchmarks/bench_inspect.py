"""`mi inspect` against the tools users would pick instead, as whole processes, on this machine.

Generates its inputs in a temp folder: the seed model (197.7 M params, 754 MiB) as a state_dict .pth and as
safetensors; sparse sharded safetensors folders with the real layouts of GPT-2 124M and Llama-2-70B.

    python benchmarks/bench_inspect.py [--runs 5] [--json out.json] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import PY, Measure, compile_package, measure, mi, table
from benchmarks.layouts import GPT2_124M, LLAMA2_70B, write_sparse_sharded

TORCH_PEER = (
    "import sys, torch; sd = torch.load(sys.argv[1], mmap=True, weights_only=True); "
    "print(sum(v.numel() for v in sd.values()))"
)
SAFETENSORS_PEER = (
    "import sys; from safetensors import safe_open\n"
    "with safe_open(sys.argv[1], 'pt') as f:\n"
    "    print(sum(f.get_slice(k).get_shape().numel() if hasattr(f.get_slice(k).get_shape(), 'numel') else "
    "__import__('math').prod(f.get_slice(k).get_shape()) for k in f.keys()))"
)


MAKE_SEED = """
import sys, torch
from safetensors.torch import save_file
sys.path.insert(0, sys.argv[3])
from fixtures.make_fixtures import SeedDecoder
torch.manual_seed(0)
sd = SeedDecoder().state_dict()
torch.save(sd, sys.argv[1])
save_file({k: v.contiguous() for k, v in sd.items()}, sys.argv[2])
"""


def make_seed(folder: Path) -> dict[str, Path]:
    """The seed checkpoint, built in a child process so this (measuring) process stays small:
    a forked child's peak RSS starts from its parent's."""
    pth, st = folder / "seed.pth", folder / "seed.safetensors"
    if not pth.exists() or not st.exists():
        root = str(Path(__file__).resolve().parents[1])
        subprocess.run([PY, "-c", MAKE_SEED, str(pth), str(st), root], check=True)
    return {"pth": pth, "safetensors": st}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--keep", type=Path, help="folder to keep generated inputs in (reused when present)")
    args = ap.parse_args()
    compile_package()
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="mi-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    seed = make_seed(tmp)
    small, big = tmp / "gpt2-124m", tmp / "llama-2-70b"
    if not (small / "model.safetensors.index.json").exists():
        write_sparse_sharded(small, GPT2_124M, 1, "F32")
    if not (big / "model.safetensors.index.json").exists():
        write_sparse_sharded(big, LLAMA2_70B, 29, "BF16")

    r = args.runs
    rows: list[tuple[str, Measure, Measure | None]] = []
    rows.append(
        (
            "seed .pth (754 MiB) vs torch.load(mmap)",
            measure("mi seed.pth", mi("inspect", str(seed["pth"]), "--json"), r),
            measure("torch.load", [PY, "-c", TORCH_PEER, str(seed["pth"])], r),
        )
    )
    rows.append(
        (
            "seed .safetensors vs safetensors.safe_open",
            measure("mi seed.safetensors", mi("inspect", str(seed["safetensors"]), "--json"), r),
            measure("safe_open", [PY, "-c", SAFETENSORS_PEER, str(seed["safetensors"])], r),
        )
    )
    m_small = measure("mi gpt2-124m", mi("inspect", str(small), "--json"), r)
    m_big = measure("mi llama-2-70b", mi("inspect", str(big), "--json"), r)
    rows.append(("sparse GPT-2 124M folder (1 shard)", m_small, None))
    rows.append(("sparse Llama-2-70B folder (29 shards)", m_big, None))
    rows.append(("mi --help", measure("mi --help", mi("--help"), r), None))
    print(table(rows))
    ratio_70b = m_big.median_s / m_small.median_s
    print(f"\nsize independence: 70B folder takes {ratio_70b:.2f}x the time of the 124M one (goal <= 1.5x)")
    if args.json:
        doc = {
            "rows": [
                {
                    "case": case,
                    "mi_s": ours.median_s,
                    "mi_peak_mib": ours.peak_rss_mib,
                    "peer_s": peer.median_s if peer else None,
                    "peer_peak_mib": peer.peak_rss_mib if peer else None,
                    "speedup": (peer.median_s / ours.median_s) if peer else None,
                }
                for case, ours, peer in rows
            ],
            "size_independence_ratio": ratio_70b,
        }
        args.json.write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
