"""Every option more than one command takes, defined once (`Annotated` types for typer).

A command that takes a model path adds `endpoint: EndpointOpt = None, token: TokenOpt = None` and passes both
to the api; without them the environment applies (`MI_HF_ENDPOINT` / `HF_ENDPOINT`, `HF_TOKEN`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

EndpointOpt = Annotated[
    str | None,
    typer.Option(
        "--endpoint",
        metavar="URL",
        help="Hub endpoint for hf:// URLs (default $MI_HF_ENDPOINT, $HF_ENDPOINT, https://huggingface.co).",
    ),
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        metavar="TOKEN",
        help="Token for private or gated models (default $HF_TOKEN); sent only to the hub or the URL's server.",
    ),
]

# Options shared by every command, defined once.
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON document (schema in README) instead of tables.")]
MarkdownOpt = Annotated[
    bool, typer.Option("--markdown", help="Print GitHub-flavoured Markdown tables (PR comments, job summaries).")
]


def one_format(json: bool, markdown: bool) -> None:
    """`--json` and `--markdown` are two answers to one question: refuse both at once."""
    if json and markdown:
        from ..errors import UsageError

        raise UsageError("choose one of --json and --markdown", rule="usage")


# Model sizes, shared by `mi params` and `mi memory` (the same flags describe the same architecture).
VocabOpt = Annotated[int | None, typer.Option("--vocab", metavar="N", help="Vocabulary size.")]
DModelOpt = Annotated[int | None, typer.Option("--d-model", metavar="N", help="Hidden width d.")]
LayersOpt = Annotated[int | None, typer.Option("--layers", metavar="N", help="Transformer layers.")]
DFFOpt = Annotated[int | None, typer.Option("--d-ff", metavar="N", help="MLP width (preset default).")]
HeadsOpt = Annotated[int | None, typer.Option("--heads", metavar="N", help="Attention heads.")]
KVHeadsOpt = Annotated[
    int | None, typer.Option("--kv-heads", metavar="N", help="Key/value heads (grouped/multi-query).")
]
HeadDimOpt = Annotated[
    int | None, typer.Option("--head-dim", metavar="N", help="Per-head width if not d/heads (gemma, chatglm).")
]
MaxPositionsOpt = Annotated[
    int | None, typer.Option("--max-positions", metavar="N", help="Learned position rows (gpt2, bert, opt).")
]
TiedOpt = Annotated[
    bool | None, typer.Option("--tied/--untied", help="Output layer shares the embedding (preset default).")
]


# The presets `--arch` accepts: the names of the family records in analysis/families, spelled out here so that
# `mi --help` and every other command start without importing the registry (about 10 ms);
# tests/test_families_registry.py fails when a record is added without its name here.
PRESETS = (
    "seed",
    "torch-decoder",
    "torch-encoder-decoder",
    "gpt2",
    "bert",
    "roberta",
    "t5",
    "llama",
    "mistral",
    "qwen2",
    "gemma",
    "opt",
    "phi",
    "falcon",
    "chatglm",
    "mixtral",
    "qwen2_moe",
    "qwen3",
    "qwen3_moe",
    "gemma2",
    "gemma3_text",
    "phi3",
    "cohere",
    "granite",
    "nemotron",
    "stablelm",
    "olmo",
    "olmo2",
    "smollm3",
    "glm4",
    "internlm3",
    "gpt_neox",
    "gptj",
    "bloom",
    "mpt",
    "gpt_bigcode",
    "starcoder2",
    "mt5",
    "bart",
    "whisper",
    "clip",
    "vit",
    "llava",
    "qwen2_vl",
    "gemma3",
    "deepseek_v2",
    "deepseek_v3",
    "dbrx",
    "gpt_oss",
    "mamba",
    "mamba2",
    "jamba",
)
Arch = StrEnum("Arch", {name: name for name in PRESETS})  # type: ignore[misc]


# The presets by name, for `--help` (typer does not list an option's choices when it has a metavar).
ARCH_HELP = (
    "Preset: " + ", ".join(a.value for a in Arch) + ". Default: seed (the seed notes' hand formula); "
    "README lists what each one counts."
)
