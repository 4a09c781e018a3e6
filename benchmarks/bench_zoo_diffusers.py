"""`mi inspect` of a diffusers pipeline folder against `DiffusionPipeline.from_pretrained` on CPU.

The pipeline is a scaled-down Stable Diffusion (UNet2DConditionModel with SD's block layout, AutoencoderKL, CLIP
text encoder; 281,791,627 parameters, 538 MiB in fp16) saved by diffusers with `variant="fp16"`, built in a child
process so this process stays small. Both tools run as whole processes, the page cache warm for both; the
figures are the median wall time and the child's peak RSS (os.wait4). The parameter counts are checked to agree
first.

Goal (issue 19): ≥ 10× faster than the library's loader, ≤ 64 MiB peak.

    python benchmarks/bench_zoo_diffusers.py [--runs 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import PY, compile_package, measure, mi

BUILD = r"""
import sys, torch
from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel
torch.manual_seed(0)
unet = UNet2DConditionModel(block_out_channels=(160, 320, 640, 640), layers_per_block=2, cross_attention_dim=512,
                            attention_head_dim=8, sample_size=32)
vae = AutoencoderKL(block_out_channels=(64, 128, 256, 256), layers_per_block=2, latent_channels=4,
                    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
te = CLIPTextModel(CLIPTextConfig(hidden_size=512, intermediate_size=2048, num_hidden_layers=6,
                                  num_attention_heads=8, projection_dim=512))
pipe = StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=te, tokenizer=None, scheduler=DDIMScheduler(),
                               safety_checker=None, feature_extractor=None, requires_safety_checker=False)
pipe.to(torch.float16).save_pretrained(sys.argv[1], variant="fp16")
print(sum(p.numel() for m in (unet, vae, te) for p in m.state_dict().values()))
"""

PEER = r"""
import sys, torch
from diffusers import DiffusionPipeline
pipe = DiffusionPipeline.from_pretrained(sys.argv[1], variant="fp16", torch_dtype=torch.float16, tokenizer=None,
                                         safety_checker=None, feature_extractor=None)
print(sum(p.numel() for m in (pipe.unet, pipe.vae, pipe.text_encoder) for p in m.state_dict().values()))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keep", type=Path, default=None, help="build the pipeline here (and keep it)")
    args = ap.parse_args()
    compile_package()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp) / "pipe"
        if not (folder / "model_index.json").is_file():
            built = subprocess.run([PY, "-c", BUILD, str(folder)], capture_output=True, text=True, check=True)
            expected = int(built.stdout.strip().splitlines()[-1])
        else:
            expected = -1
        ours = json.loads(subprocess.run(mi("inspect", "--json", str(folder)), capture_output=True, text=True,
                                         check=True).stdout)  # fmt: skip
        peer = int(subprocess.run([PY, "-c", PEER, str(folder)], capture_output=True, text=True,
                                  check=True).stdout.strip().splitlines()[-1])  # fmt: skip
        assert ours["total_params"] == peer and expected in (-1, peer), (ours["total_params"], peer, expected)
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        m = measure("mi inspect", mi("inspect", str(folder)), runs=args.runs)
        p = measure("DiffusionPipeline.from_pretrained", [PY, "-c", PEER, str(folder)], runs=max(3, args.runs // 2))
    ratio = p.median_s / m.median_s
    print(f"pipeline: {peer:,} parameters, {size / 2**20:.1f} MiB of files (fp16 variant)")
    print(f"{'reader':36} {'median s':>9} {'peak MiB':>9}")
    print(f"{m.label:36} {m.median_s:9.3f} {m.peak_rss_mib:9.1f}")
    print(f"{p.label:36} {p.median_s:9.3f} {p.peak_rss_mib:9.1f}")
    fast = "met" if ratio >= 10 else "MISSED"
    small = "met" if m.peak_rss_mib <= 64 else "MISSED"
    print(f"speed-up {ratio:.1f}x (goal ≥ 10x: {fast}); mi peak {m.peak_rss_mib:.1f} MiB (goal ≤ 64 MiB: {small})")


if __name__ == "__main__":
    main()
