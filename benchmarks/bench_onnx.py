"""ONNX reading: `mi` against `onnx.load(load_external_data=False)`, as whole processes, same run.

Builds (once, cached) a ~700 MB ONNX file with inline weights by exporting a 14-layer transformer encoder
(d_model 1024, ffn 4096; ~176 M f32 parameters) with `torch.onnx.export`, then runs each reader several times
as a child process and reports the median wall time and the peak RSS of the child (os.wait4 ru_maxrss).

Goal (issue 3): mi ≤ 0.5× the time of onnx.load and ≤ 100 MiB peak RSS.

Usage: .venv/bin/python benchmarks/bench_onnx.py [--runs 5] [--file model.onnx] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable
ROOT = Path(__file__).resolve().parents[1]

MI_LIB = "import sys, modelscope_inspect as mi; inv = mi.load(sys.argv[1]); print(inv.total_params)"
ONNX_LOAD = (
    "import sys, numpy as np, onnx; m = onnx.load(sys.argv[1], load_external_data=False); "
    "print(sum(int(np.prod(t.dims)) for t in m.graph.initializer))"
)


def build(path: Path) -> None:
    """Export a ~176 M-parameter transformer encoder (plain Linear/LayerNorm/softmax blocks) to ONNX."""
    import torch

    class Block(torch.nn.Module):
        def __init__(self, d: int = 1024, ff: int = 4096, heads: int = 16) -> None:
            super().__init__()
            self.heads = heads
            self.qkv = torch.nn.Linear(d, 3 * d)
            self.proj = torch.nn.Linear(d, d)
            self.fc1 = torch.nn.Linear(d, ff)
            self.fc2 = torch.nn.Linear(ff, d)
            self.ln1 = torch.nn.LayerNorm(d)
            self.ln2 = torch.nn.LayerNorm(d)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, t, d = x.shape
            q, k, v = self.qkv(self.ln1(x)).reshape(b, t, 3, self.heads, d // self.heads).unbind(2)
            att = torch.softmax(torch.einsum("bthd,bshd->bhts", q, k) / (d // self.heads) ** 0.5, dim=-1)
            x = x + self.proj(torch.einsum("bhts,bshd->bthd", att, v).reshape(b, t, d))
            return x + self.fc2(torch.nn.functional.gelu(self.fc1(self.ln2(x))))

    torch.manual_seed(0)
    model = torch.nn.Sequential(*[Block() for _ in range(14)], torch.nn.Linear(1024, 1024)).eval()
    x = torch.randn(1, 8, 1024)
    with torch.no_grad():
        torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["x"], output_names=["y"])


def build_many_nodes(path: Path, n: int = 100_000) -> None:
    """A graph-heavy model: a chain of `n` Add nodes and one tiny initializer (the opposite case)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Add", [f"v{i}", "one"], [f"v{i + 1}"], name=f"add_{i}") for i in range(n)]
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("v0", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info(f"v{n}", TensorProto.FLOAT, [1])],
        initializer=[numpy_helper.from_array(np.ones(1, np.float32), "one")],
    )
    onnx.save(helper.make_model(graph), str(path))


def run(code: str | None, args: list[str]) -> tuple[float, int, str]:
    """Wall seconds, peak RSS bytes and stdout of one child process."""
    cmd = [PY, "-c", code, *args] if code else [PY, *args]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read()
    err = proc.stderr.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:3]} failed ({proc.returncode}): {err.decode()[-2000:]}")
    return wall, usage.ru_maxrss * 1024, out.decode().strip()  # ru_maxrss is KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--file", type=Path, default=None, help="an existing .onnx file instead of the built one")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "mi-bench-onnx")
    ap.add_argument("--build-only", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--build-nodes", type=Path, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.build_only is not None:
        build(a.build_only)
        return
    if a.build_nodes is not None:
        build_many_nodes(a.build_nodes)
        return
    if a.file is None:
        a.workdir.mkdir(parents=True, exist_ok=True)
        path = a.workdir / "encoder14.onnx"
        if not path.exists():
            print(f"building {path} …", flush=True)
            # In a child: a forked child's ru_maxrss starts from the parent's RSS, so the parent must stay
            # small (never import torch here) for the peak figures to mean anything.
            subprocess.run([PY, __file__, "--build-only", str(path)], check=True)
    else:
        path = a.file
    compare(path, a.runs, goal=a.file is None)
    if a.file is None:
        nodes = a.workdir / "chain100k.onnx"
        if not nodes.exists():
            subprocess.run([PY, __file__, "--build-nodes", str(nodes)], check=True)
        print("\nthe opposite case: 100,000 nodes, one 4-byte initializer (Python decodes every node)")
        compare(nodes, a.runs, goal=False)


def compare(path: Path, runs: int, goal: bool) -> None:
    size = path.stat().st_size
    print(f"file: {path} ({size / 2**20:,.0f} MiB)")

    contenders = {
        "onnx.load(load_external_data=False)": (ONNX_LOAD, [str(path)]),
        "mi.load (library)": (MI_LIB, [str(path)]),
        "mi inspect --json (CLI)": (None, ["-m", "modelscope_inspect", "inspect", str(path), "--json"]),
        "python -c pass (interpreter floor)": ("pass", []),
    }
    # Warm the page cache so every contender reads from memory, then interleave the runs.
    run(ONNX_LOAD, [str(path)])
    results: dict[str, list[tuple[float, int]]] = {k: [] for k in contenders}
    outputs: dict[str, str] = {}
    for _ in range(runs):
        for name, (code, args) in contenders.items():
            wall, rss, out = run(code, args)
            results[name].append((wall, rss))
            outputs[name] = out
    ref_t = statistics.median(w for w, _ in results["onnx.load(load_external_data=False)"])
    ref_m = statistics.median(m for _, m in results["onnx.load(load_external_data=False)"])
    print(f"{'reader':40} {'median s':>9} {'peak MiB':>9} {'time ratio':>11} {'peak ratio':>11}")
    for name, rows in results.items():
        t = statistics.median(w for w, _ in rows)
        m = statistics.median(r for _, r in rows)
        print(f"{name:40} {t:9.3f} {m / 2**20:9.1f} {t / ref_t:10.2f}× {m / ref_m:10.2f}×")
    lib = outputs["mi.load (library)"]
    ref = outputs["onnx.load(load_external_data=False)"]
    print(f"initializer elements: onnx {ref}, mi {lib} -> {'AGREE' if lib == ref else 'DISAGREE'}")
    if not goal:
        return
    t_mi = statistics.median(w for w, _ in results["mi inspect --json (CLI)"])
    m_mi = max(r for _, r in results["mi inspect --json (CLI)"])
    print(
        f"goal: mi inspect ≤ 0.5× onnx.load time: {t_mi / ref_t:.2f}× {'met' if t_mi / ref_t <= 0.5 else 'MISSED'}; "
        f"≤ 100 MiB peak: {m_mi / 2**20:.1f} MiB {'met' if m_mi <= 100 * 2**20 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
