"""Keras `.keras` reading: `mi inspect` against `keras.saving.load_model` (torch backend, CPU), same run.

Builds (once, cached) a `.keras` archive of ~25 M f32 parameters (an MLP of six 2048-wide Dense layers with
BatchNormalization between them, ~100 MB) with Keras itself, then runs each reader several times as a child
process and reports the median wall time and the peak RSS of the child (os.wait4 ru_maxrss).

Goal (issue 19): mi inspect ≥ 10× faster than keras.saving.load_model and ≤ 64 MiB peak RSS.

Usage: .venv/bin/python benchmarks/bench_zoo_keras.py [--runs 3] [--file m.keras] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.bench_onnx import run

PY = sys.executable
os.environ.setdefault("KERAS_BACKEND", "torch")

MI_LIB = "import sys, modelscope_inspect as mi; inv = mi.load(sys.argv[1]); print(inv.total_params)"
KERAS_LOAD = "import sys, keras; m = keras.saving.load_model(sys.argv[1]); print(m.count_params())"


def build(path: Path) -> None:
    import keras

    keras.utils.set_random_seed(0)
    layers: list[object] = [keras.Input((2048,))]
    for i in range(6):
        layers += [keras.layers.Dense(2048, name=f"dense_{i}"), keras.layers.BatchNormalization(name=f"bn_{i}")]
    layers.append(keras.layers.Dense(10, name="logits"))
    keras.Sequential(layers, name="mlp").save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--file", type=Path, default=None, help="an existing .keras file instead of the built one")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "mi-bench-keras")
    ap.add_argument("--build-only", type=Path, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.build_only is not None:
        build(a.build_only)
        return
    path = a.file
    if path is None:
        a.workdir.mkdir(parents=True, exist_ok=True)
        path = a.workdir / "mlp25m.keras"
        if not path.exists():
            print(f"building {path} …", flush=True)
            subprocess.run([PY, "-m", "benchmarks.bench_zoo_keras", "--build-only", str(path)], check=True)
    print(f"file: {path} ({path.stat().st_size / 2**20:,.0f} MiB)")
    contenders = {
        "keras.saving.load_model (torch, CPU)": (KERAS_LOAD, [str(path)]),
        "mi.load (library)": (MI_LIB, [str(path)]),
        "mi inspect --json (CLI)": (None, ["-m", "modelscope_inspect", "inspect", str(path), "--json"]),
        "python -c pass (interpreter floor)": ("pass", []),
    }
    run(MI_LIB, [str(path)])  # warm the page cache
    results: dict[str, list[tuple[float, int]]] = {k: [] for k in contenders}
    outputs: dict[str, str] = {}
    for _ in range(a.runs):
        for name, (code, args) in contenders.items():
            wall, rss, out = run(code, args)
            results[name].append((wall, rss))
            outputs[name] = out
    ref = "keras.saving.load_model (torch, CPU)"
    ref_t = statistics.median(w for w, _ in results[ref])
    ref_m = statistics.median(m for _, m in results[ref])
    print(f"{'reader':40} {'median s':>9} {'peak MiB':>9} {'time ratio':>11} {'peak ratio':>11}")
    for name, rows in results.items():
        t = statistics.median(w for w, _ in rows)
        m = statistics.median(r for _, r in rows)
        print(f"{name:40} {t:9.3f} {m / 2**20:9.1f} {t / ref_t:10.3f}× {m / ref_m:10.3f}×")
    lib, keras_n = outputs["mi.load (library)"], outputs[ref]
    print(f"parameters: keras count_params {keras_n}, mi {lib} -> {'AGREE' if lib == keras_n else 'DISAGREE'}")
    t_mi = statistics.median(w for w, _ in results["mi inspect --json (CLI)"])
    m_mi = max(r for _, r in results["mi inspect --json (CLI)"])
    speedup = ref_t / t_mi
    print(
        f"goal: mi inspect ≥ 10× faster than load_model: {speedup:.1f}× {'met' if speedup >= 10 else 'MISSED'}; "
        f"≤ 64 MiB peak: {m_mi / 2**20:.1f} MiB {'met' if m_mi <= 64 * 2**20 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
