"""Writes the tiny files of examples/zoo/ with the real libraries (run from the repository root):

- `pipeline/`: a StableDiffusionPipeline (tiny UNet, VAE, CLIP text encoder) saved by diffusers with variant="fp16";
- `adapter/` + `adapter-base/`: a LoRA adapter saved by peft on a tiny llama, and that llama's config.json;
- `tokenizer-mismatch/`: a tiny llama whose embedding has fewer rows than its BPE tokenizer has tokens;
- `arrays.npz`: numpy.savez of three arrays.

    python examples/zoo/make_hub_zoo.py
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent


def pipeline() -> None:
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=8, attention_head_dim=2, norm_num_groups=2,
    )  # fmt: skip
    vae = AutoencoderKL(block_out_channels=(4,), in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=2,
                        down_block_types=("DownEncoderBlock2D",), up_block_types=("UpDecoderBlock2D",))  # fmt: skip
    te = CLIPTextModel(CLIPTextConfig(hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
                                      vocab_size=64, max_position_embeddings=8, projection_dim=8, bos_token_id=0,
                                      eos_token_id=1, pad_token_id=1))  # fmt: skip
    pipe = StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=te, tokenizer=None, scheduler=DDIMScheduler(),
                                   safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)  # fmt: skip
    out = HERE / "pipeline"
    shutil.rmtree(out, ignore_errors=True)
    pipe.to(torch.float16).save_pretrained(out, variant="fp16")


def _llama(vocab: int) -> object:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=16)  # fmt: skip
    return LlamaForCausalLM(cfg)


def adapter() -> None:
    from peft import LoraConfig, get_peft_model

    base = _llama(64)
    (HERE / "adapter-base").mkdir(exist_ok=True)
    base.config.save_pretrained(HERE / "adapter-base")  # type: ignore[attr-defined]
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))  # type: ignore[arg-type]
    model.peft_config["default"].base_model_name_or_path = "examples/zoo/adapter-base"
    model.save_pretrained(HERE / "adapter")
    (HERE / "adapter" / "README.md").unlink()  # peft's model-card template: not part of the adapter
    model.print_trainable_parameters()


def tokenizer_mismatch() -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    text = ["the quick brown fox jumps over the lazy dog", "a model file says what is inside"] * 20
    tok.train_from_iterator(text, trainer=trainers.BpeTrainer(vocab_size=60, special_tokens=["<unk>", "<s>", "</s>"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    fast.add_tokens(["<tool_call>", "</tool_call>"])  # added after training; the embedding was not resized
    out = HERE / "tokenizer-mismatch"
    shutil.rmtree(out, ignore_errors=True)
    _llama(len(fast) - 2).save_pretrained(out)  # type: ignore[attr-defined]
    fast.save_pretrained(out)


def arrays() -> None:
    rng = np.random.default_rng(0)
    np.savez(HERE / "arrays.npz", embeddings=rng.standard_normal((16, 8), dtype=np.float32),
             ids=np.arange(16, dtype=np.int64), mask=np.ones(16, dtype=bool))  # fmt: skip


if __name__ == "__main__":
    pipeline()
    adapter()
    tokenizer_mismatch()
    arrays()
    print(json.dumps(sorted(str(p.relative_to(HERE)) for p in HERE.rglob("*") if p.is_file())))
