"""The small things a new user meets first: usage messages that say what to do, help that reads at 80 columns,
counts that say what they count, one shape notation (issue 15, item 7)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, ROOT, run_cli

SEED = ("--vocab", "100", "--d-model", "16", "--layers", "2")


def _usage(*args: str) -> str:
    r = run_cli(*args)
    assert r.code == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stdout + r.stderr
    assert r.stderr.count("\n") == 1, r.stderr  # one line
    return r.stderr


# ---- mi params / mi memory ----------------------------------------------------------------------------------


def test_lora_on_the_seed_formula_says_why_it_cannot() -> None:
    err = _usage("params", *SEED, "--lora-r", "8")
    assert "seed has: \n" not in err and "no named linear modules" in err and "--arch" in err
    err = _usage("params", *SEED, "--lora-r", "8", "--lora-targets", "q_proj")
    assert "LoRA can target: \n" not in err and "no named linear modules" in err


def test_lora_without_targets_lists_the_preset_linears() -> None:
    err = _usage("params", *SEED, "--heads", "2", "--arch", "llama", "--lora-r", "8")
    listed = err.rsplit(" are ", 1)[1].strip().split(", ")
    assert {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"} <= set(listed)


def test_unknown_dtype_lists_the_known_names_in_params_too() -> None:
    from modelscope_inspect.dtypes import DTYPES

    err = _usage("params", *SEED, "--dtype", "fp17")
    assert "'fp17'" in err and all(name in err for name in ("f32", "f16", "bf16", "i8"))
    assert set(DTYPES) <= set(re.findall(r"[\w]+", err))
    assert "fp32, fp16, bf16" in _usage("memory", *SEED, "--heads", "2", "--d-ff", "64", "--dtype", "fp17")


@pytest.mark.parametrize("command", ["params", "memory"])
def test_zero_layers_is_refused(command: str) -> None:
    extra = ("--heads", "2", "--d-ff", "64") if command == "memory" else ()
    err = _usage(command, "--vocab", "100", "--d-model", "16", "--layers", "0", *extra)
    assert "--layers must be positive, got 0" in err


def test_zero_layers_in_a_config_is_counted(tmp_path: Path) -> None:
    # transformers builds a model from `n_layer: 0` (tests/test_params_random.py counts such configs against
    # it); a config is what it is, only the flag is a typo.
    cfg = json.loads((ROOT / "examples/tiny-gpt2/config.json").read_text())
    cfg["n_layer"] = 0
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    assert run_cli("params", "--config", str(path)).code == 0


@pytest.mark.parametrize(
    "flags",
    [
        ("--optimizer", "sgd"),
        ("--mixed-precision",),
        ("--recompute", "full"),
        ("--optimizer", "adam", "--recompute", "selective"),
    ],
)
def test_training_flags_without_training_are_refused(flags: tuple[str, ...]) -> None:
    cfg = str(ROOT / "examples/configs/llama-3-8b.json")
    err = _usage("memory", "--config", cfg, *flags)
    named = [f for f in flags if f.startswith("--")]
    assert all(f in err for f in named) and "--training" in err
    ok = run_cli("memory", "--config", cfg, "--training", *flags, "--dtype", "bf16", "--json")
    assert ok.code == 0, ok.stderr


def test_training_flags_change_nothing_silently() -> None:
    # Before: `--recompute full` without --training changed the FLOPs line and nothing said so.
    cfg = str(ROOT / "examples/configs/llama-3-8b.json")
    plain = json.loads(run_cli("memory", "--config", cfg, "--json").stdout)
    assert run_cli("memory", "--config", cfg, "--recompute", "full", "--json").code == 2
    trained = json.loads(run_cli("memory", "--config", cfg, "--training", "--recompute", "full", "--json").stdout)
    assert plain["flops_terms"] != trained["flops_terms"]


# ---- mi check ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "needle"),
    [("124M+-", "the tolerance after ± is missing"), ("124M±", "the tolerance after ± is missing"),
     ("±1%", "the count before the tolerance is missing")],
)  # fmt: skip
def test_expect_params_says_what_is_missing(value: str, needle: str) -> None:
    err = _usage("check", str(FIXTURES / "tiny_seed.safetensors"), "--expect-params", value, "--no-config")
    assert needle in err and "''" not in err


# ---- mi inspect ----------------------------------------------------------------------------------------------


def test_filter_that_matches_nothing_says_so() -> None:
    r = run_cli("inspect", "examples/tiny-gpt2", "--filter", "nothing*")
    assert r.code == 0
    assert "no tensor matches 'nothing*'" in r.stdout
    assert not re.search(r"^name\s+shape\s+dtype", r.stdout, re.M)  # no empty table header


def test_one_shape_notation_in_the_tree_and_the_tensor_table() -> None:
    out = run_cli("inspect", str(ROOT / "examples/tiny-gpt2"), "--tensors").stdout
    from safetensors import safe_open

    with safe_open(str(ROOT / "examples/tiny-gpt2/model.safetensors"), "np") as f:
        wte = f.get_slice("transformer.wte.weight").get_shape()
    assert out.count(f"[{wte[0]}×{wte[1]}]") == 2  # once in the tree, once in the tensor table
    assert not re.search(r"\[\d+, \d+", out)


# ---- mi scan -------------------------------------------------------------------------------------------------


def test_scan_globals_count_agrees_with_its_rows() -> None:
    import pickletools
    import zipfile

    r = run_cli("scan", str(FIXTURES / "tiny_seed_whole.pth"))
    m = re.search(r"(\d+) globals, (\d+) not on the allowlist", r.stdout)
    assert m, r.stdout
    rows = re.findall(r"^unknown\s+[\d,]+\s+\w+\s+(\S+)", r.stdout, re.M)
    assert int(m[2]) == len(rows)
    # The total is every distinct global the pickle imports (pickletools as the oracle).
    with zipfile.ZipFile(FIXTURES / "tiny_seed_whole.pth") as z:
        data = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    names = {arg.replace(" ", ".") for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}
    assert int(m[1]) == len(names)


def test_scan_says_entry_for_one(tmp_path: Path) -> None:
    import shutil

    shutil.copy(FIXTURES / "tiny_seed.pth", tmp_path / "model.pth")
    (tmp_path / "notes.txt").write_text("not a model")
    out = run_cli("scan", str(tmp_path)).stdout
    assert "1 other entry skipped" in out and "entries" not in out


# ---- help ----------------------------------------------------------------------------------------------------


def _help(*args: str, width: int = 80) -> str:
    r = run_cli(*args, "--help", env={"COLUMNS": str(width)})
    assert r.code == 0
    return r.stdout


@pytest.mark.parametrize("width", [60, 80, 100])
def test_help_never_breaks_a_flag_or_a_preset(width: int) -> None:
    from modelscope_inspect.cli import COMMANDS

    for name, _ in COMMANDS:
        text = _help(name, width=width)
        assert not re.search(r"[\w-]-$", text, re.M), f"mi {name} --help at {width}: a line ends inside a word"
        for line in text.split("\n"):
            if line.strip().startswith("mi "):  # an example: one command line, whole
                assert len(line) <= max(width, 80), line


def test_params_help_lists_every_preset() -> None:
    from modelscope_inspect.analysis.params import PRESETS

    text = re.sub(r"\s+", " ", _help("params"))
    assert all(re.search(rf"[ (]{re.escape(p)}[,.)]", text) for p in PRESETS), text
    assert "Examples:" in text and "mi params --vocab 168283 --d-model 512 --layers 6" in text


def test_top_level_help_has_examples_and_whole_summaries() -> None:
    from modelscope_inspect.cli import COMMANDS

    text = _help()
    assert "Examples:" in text and "mi inspect model.safetensors" in text
    listing = text.split("Commands:", 1)[1].split("Examples:", 1)[0]
    assert "..." not in listing  # click cut long summaries with "..."
    for name, fn in COMMANDS:
        first = (fn.__doc__ or "").strip().split("\n", 1)[0]
        assert re.search(rf"^  {name} ", listing, re.M) and first in re.sub(r"\s+", " ", listing), name
    assert all(len(line) <= 80 for line in text.split("\n"))


# ---- make test -----------------------------------------------------------------------------------------------


def test_make_test_says_what_it_is_doing() -> None:
    # `make test` was silent for a minute of pip and half a minute of mypy: every phase now prints a line.
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    flags = re.search(r"^PIP_FLAGS := (.*)$", text, re.M)
    assert flags and "-q" not in flags[1].split()
    for target in ("$(VENV)/.dev-installed", "$(VENV)/.installed", "lint", "typecheck", "unit", "system-deps"):
        recipe = text.split(f"\n{target}:", 1)[1].split("\n\n", 1)[0]
        first = recipe.split("\n")[1]
        assert first.startswith('\t@echo "== '), (target, first)
