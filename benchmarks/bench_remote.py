"""Remote inspection of a 70B checkpoint over loopback: time and bytes, `mi` against huggingface_hub.

A hub-style repository `meta-llama/Llama-2-70b-hf` is generated in a temp folder: 29 sparse safetensors shards
with the real Llama-2-70B layout headers (138 GB of tensors, no disk), `model.safetensors.index.json` and
`config.json`, served by the standard-library range server of tests/test_remote_server.py on 127.0.0.1.
Both tools run as whole processes against the same server:

- `mi inspect --json hf://meta-llama/Llama-2-70b-hf` cold (empty header cache) and warm (second run: every
  range revalidated with If-None-Match, nothing transferred);
- peer: `huggingface_hub.HfApi(endpoint=…).get_safetensors_metadata(repo)`, the hub client's own
  header-only reader (what hf-mem builds on), which counts parameters per dtype;
- for scale, `mi inspect --json` of the same folder on local disk (process start-up dominates all rows).

Bytes are counted by the server (body bytes it sent), so both tools are measured the same way.

    python benchmarks/bench_remote.py [--runs 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import PY, Measure, compile_package, measure, mi
from benchmarks.layouts import LLAMA2_70B, write_sparse_sharded
from tests.test_remote_server import serve

REPO = "meta-llama/Llama-2-70b-hf"
PARAMS = 68_976_648_192  # Llama-2-70B, also checked against transformers on the meta device below
CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 8192,
    "intermediate_size": 28672,
    "num_hidden_layers": 80,
    "num_attention_heads": 64,
    "num_key_value_heads": 8,
    "vocab_size": 32000,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-05,
    "torch_dtype": "float16",
}
PEER = (
    "import sys; from huggingface_hub import HfApi\n"
    "md = HfApi(endpoint=sys.argv[1]).get_safetensors_metadata(sys.argv[2])\n"
    "print(sum(md.parameter_count.values()))"
)


ORACLE = (
    "import json, sys, torch\n"
    "from transformers import LlamaConfig, LlamaForCausalLM\n"
    "cfg = LlamaConfig(**json.loads(sys.argv[1]))\n"
    "with torch.device('meta'):\n"
    "    print(sum(p.numel() for p in LlamaForCausalLM(cfg).parameters()))"
)


def meta_oracle() -> int | None:
    """Llama-2-70B's parameter count from transformers on the meta device, in a child process (importing torch
    here would inflate every child's peak RSS: fork copies the parent's resident pages before exec)."""
    cfg = {k: v for k, v in CONFIG.items() if k not in ("architectures", "model_type", "torch_dtype")}
    r = subprocess.run([PY, "-c", ORACLE, json.dumps(cfg)], capture_output=True, text=True)
    return int(r.stdout) if r.returncode == 0 else None


def timed(label: str, argv: list[str], runs: int, env: dict[str, str], state: object) -> tuple[Measure, int, int]:
    """Measure, then report the server's bytes and requests for one run of the same command."""
    m = measure(label, argv, runs=runs, warmup=1, env=env)
    state.reset_counters()  # type: ignore[attr-defined]
    subprocess.run(argv, check=True, capture_output=True, env={**os.environ, **env})
    return m, state.bytes_sent, state.requests  # type: ignore[attr-defined]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    compile_package()
    oracle = meta_oracle()
    with tempfile.TemporaryDirectory(prefix="mi-bench-remote-") as tmp:
        root = Path(tmp) / "hub"
        repo = root / REPO
        total = write_sparse_sharded(repo, LLAMA2_70B, 29, dtype="F16")
        (repo / "config.json").write_text(json.dumps(CONFIG, indent=2))
        file_bytes = sum(p.stat().st_size for p in repo.iterdir())
        with serve(root) as (base, state):
            # Correctness first, from one run of each tool.
            env_cold = {"MI_HF_ENDPOINT": base, "MI_CACHE_DIR": str(Path(tmp) / "cold"), "MI_NO_CACHE": "1"}
            out = subprocess.run(
                mi("inspect", "--json", f"hf://{REPO}"),
                check=True,
                capture_output=True,
                text=True,
                env={**os.environ, **env_cold},
            )
            doc = json.loads(out.stdout)
            peer_out = subprocess.run([PY, "-c", PEER, base, REPO], check=True, capture_output=True, text=True)
            assert doc["total_params"] == PARAMS == int(peer_out.stdout), (doc["total_params"], peer_out.stdout)
            assert oracle in (None, PARAMS), oracle
            assert len(doc["files"]) == 30 and doc["total_bytes"] == total

            cold, cold_bytes, cold_req = timed(
                "mi cold", mi("inspect", "--json", f"hf://{REPO}"), args.runs, env_cold, state
            )
            warm_env = {"MI_HF_ENDPOINT": base, "MI_CACHE_DIR": str(Path(tmp) / "warm")}
            subprocess.run(
                mi("inspect", "--json", f"hf://{REPO}"), check=True, capture_output=True, env={**os.environ, **warm_env}
            )
            warm, warm_bytes, warm_req = timed(
                "mi warm", mi("inspect", "--json", f"hf://{REPO}"), args.runs, warm_env, state
            )
            peer, peer_bytes, peer_req = timed("peer", [PY, "-c", PEER, base, REPO], args.runs, {}, state)
            local = measure("mi local", mi("inspect", "--json", str(repo)), runs=args.runs, warmup=1)

    rows = [
        ("mi inspect hf:// (cold cache)", cold, cold_bytes, cold_req),
        ("mi inspect hf:// (warm cache)", warm, warm_bytes, warm_req),
        ("huggingface_hub get_safetensors_metadata", peer, peer_bytes, peer_req),
        ("mi inspect, same folder on local disk", local, 0, 0),
    ]
    print(f"Llama-2-70B, 29 sparse shards, {file_bytes / 1e9:.1f} GB of files, {PARAMS:,} params, loopback")
    print(f"params: mi = huggingface_hub = {PARAMS:,}; transformers on the meta device: {oracle or 'not installed'}")
    print(f"{'case':<42} {'median s':>9} {'MiB RSS':>8} {'bytes':>11} {'requests':>9} {'% of files':>11}")
    for label, m, nbytes, req in rows:
        print(
            f"{label:<42} {m.median_s:9.3f} {m.peak_rss_mib:8.1f} {nbytes:11,} {req:9,} "
            f"{100 * nbytes / file_bytes:10.5f}%"
        )
    print(
        f"ratio peer/mi: time {peer.median_s / cold.median_s:.2f}x cold, {peer.median_s / warm.median_s:.2f}x warm; "
        f"bytes {peer_bytes / max(cold_bytes, 1):.2f}x cold"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "suite": "remote",
                    "file_bytes": file_bytes,
                    "rows": [
                        {
                            "case": label,
                            "median_s": m.median_s,
                            "runs": m.runs,
                            "peak_rss_mib": m.peak_rss_mib,
                            "bytes": nbytes,
                            "requests": req,
                        }
                        for label, m, nbytes, req in rows
                    ],
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
