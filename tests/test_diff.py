"""`mi diff`: structural and value differences between checkpoints, across formats.

Oracles: the files are written by torch / safetensors from state dicts whose edits the test makes itself, and
every expected number (param and byte deltas, per-group deltas, max |a-b|) is computed with torch on those
state dicts, not with our own arithmetic.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelscope_inspect.analysis.diff import find_rename
from modelscope_inspect.api import diff_paths, exit_code
from tests.conftest import FIXTURES, run_cli

torch = pytest.importorskip("torch")
st_torch = pytest.importorskip("safetensors.torch")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


def state_dict() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {
        "embed.weight": torch.randn(50, 8),
        "layers.0.attn.weight": torch.randn(8, 8),
        "layers.0.attn.bias": torch.randn(8),
        "layers.1.attn.weight": torch.randn(8, 8),
        "layers.1.attn.bias": torch.randn(8),
        "head.weight": torch.randn(10, 8),
    }


def save_both(sd: dict[str, torch.Tensor], folder: Path, stem: str) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    pth, st = folder / f"{stem}.pth", folder / f"{stem}.safetensors"
    torch.save(sd, pth)
    st_torch.save_file({k: v.contiguous() for k, v in sd.items()}, st)
    return pth, st


def test_pth_and_its_safetensors_are_identical(tmp_path: Path) -> None:
    pth, st = save_both(state_dict(), tmp_path, "m")
    r = diff_paths(pth, st)
    assert r.identical and exit_code(r) == 0 and r.same == 6 and r.delta_params == 0
    rv = diff_paths(pth, st, values=True)
    assert rv.identical and rv.values is not None and all(v.equal for v in rv.values) and len(rv.values) == 6
    cli = run_cli("diff", str(pth), str(st))
    assert cli.code == 0 and "identical" in cli.stdout


def test_structural_changes_against_torch(tmp_path: Path) -> None:
    a = state_dict()
    b = dict(a)
    b["embed.weight"] = torch.randn(60, 8)  # reshaped: vocabulary grew
    b["head.weight"] = a["head.weight"].to(torch.float16)  # dtype changed
    del b["layers.1.attn.bias"]  # removed
    b["layers.2.attn.weight"] = torch.randn(8, 8)  # added
    pa, _ = save_both(a, tmp_path / "a", "m")
    _, sb = save_both(b, tmp_path / "b", "m")
    r = diff_paths(pa, sb)
    assert [s.name for s in r.added] == ["layers.2.attn.weight"]
    assert [s.name for s in r.removed] == ["layers.1.attn.bias"]
    assert {c.key: c.kinds for c in r.changed} == {"embed.weight": ("reshaped",), "head.weight": ("dtype",)}
    n = lambda sd: sum(t.numel() for t in sd.values())  # noqa: E731
    nbytes = lambda sd: sum(t.numel() * t.element_size() for t in sd.values())  # noqa: E731
    assert r.delta_params == n(b) - n(a)
    assert r.delta_bytes == nbytes(b) - nbytes(a)
    groups = {g.name: g for g in r.groups}
    for g in ("embed", "layers", "head"):
        oracle_a = sum(t.numel() for k, t in a.items() if k.startswith(g + "."))
        oracle_b = sum(t.numel() for k, t in b.items() if k.startswith(g + "."))
        assert (groups[g].params_a, groups[g].params_b) == (oracle_a, oracle_b)
    cli = run_cli("diff", str(pa), str(sb), "--json")
    doc = json.loads(cli.stdout)
    assert cli.code == 1 and doc["command"] == "diff" and doc["schema_version"] == 1
    assert set(doc) >= {"added", "removed", "changed", "delta_params", "delta_bytes", "groups"}
    assert doc["delta_params"] == n(b) - n(a) and doc["changed"][0]["name"] == "embed.weight"


def test_rename_by_prefix(tmp_path: Path) -> None:
    sd = state_dict()
    pa, _ = save_both(sd, tmp_path / "a", "m")
    _, sb = save_both({f"module.{k}": v for k, v in sd.items()}, tmp_path / "b", "m")
    r = diff_paths(pa, sb)
    assert r.rename == ("", "module.") and r.renamed == 6
    assert not r.added and not r.removed and not r.changed and r.delta_params == 0
    assert exit_code(r) == 1  # names differ, like `diff`; the summary says they only moved
    cli = run_cli("diff", str(pa), str(sb))
    assert "'module.'" in cli.stdout and "6 unchanged" in cli.stdout
    assert find_rename(["model.a.w", "model.b.w"], ["a.w", "b.w"]) == ("model.", "")
    assert find_rename(["transformer.a", "transformer.b"], ["gpt.a", "gpt.b"]) == ("transformer.", "gpt.")
    assert find_rename(["a", "b"], ["a", "c"]) is None


def test_values_find_the_changed_element(tmp_path: Path) -> None:
    a = state_dict()
    b = {k: v.clone() for k, v in a.items()}
    b["layers.0.attn.weight"][3, 5] += 0.25
    pa, _ = save_both(a, tmp_path / "a", "m")
    _, sb = save_both(b, tmp_path / "b", "m")
    assert diff_paths(pa, sb).identical  # structure alone cannot see it
    seen: list[tuple[int, int]] = []

    class Recorder:  # the api's progress protocol: one task, told the bytes done out of its total
        def start(self, label: str, total: int, unit: str) -> Recorder:
            assert unit == "bytes"
            self.total = total
            return self

        def advance(self, done: int, nbytes: int) -> None:
            seen.append((done, self.total))

        def close(self) -> None:
            pass

    r = diff_paths(pa, sb, values=True, progress=Recorder())
    differ = [v for v in r.values or () if v.equal is False]
    assert [v.key for v in differ] == ["layers.0.attn.weight"] and exit_code(r) == 1
    if differ[0].mismatched is not None:  # numpy present: the details match the edit
        assert differ[0].mismatched == 1
        assert differ[0].max_abs_diff == pytest.approx(
            (b["layers.0.attn.weight"] - a["layers.0.attn.weight"]).abs().max().item()
        )
    assert seen[-1][0] == seen[-1][1] == sum(t.numel() * 4 for t in a.values())
    cli = run_cli("diff", str(pa), str(sb), "--values", "--json")
    doc = json.loads(cli.stdout)
    assert cli.code == 1 and [v["name"] for v in doc["values"] if v["equal"] is False] == ["layers.0.attn.weight"]


def test_values_across_dtypes_and_strided_views(tmp_path: Path) -> None:
    pytest.importorskip("numpy")
    torch.manual_seed(1)
    base = torch.randn(6, 4)
    a = {"t": base.t(), "h": base[:, 0].clone()}  # t is a transposed (strided) view in the .pth
    pa = tmp_path / "a.pth"
    torch.save(a, pa)
    sb = tmp_path / "b.safetensors"
    st_torch.save_file({"t": base.t().contiguous(), "h": base[:, 0].to(torch.bfloat16)}, sb)
    r = diff_paths(pa, sb, values=True)
    vals = {v.key: v for v in r.values or ()}
    assert vals["t"].equal is True  # same numbers, different layout
    oracle = (base[:, 0] - base[:, 0].to(torch.bfloat16).float()).abs().max().item()
    assert vals["h"].equal is False and vals["h"].max_abs_diff == pytest.approx(oracle, rel=1e-6)


def test_tied_alias_dropped_by_safetensors(tmp_path: Path) -> None:
    r = diff_paths(FIXTURES / "tied_gpt2.bin", Path("examples/tiny-gpt2"))
    assert [s.name for s in r.removed] == ["lm_head.weight"] and r.removed[0].shared_with == "transformer.wte.weight"
    assert r.delta_params == 0  # a tied alias holds no parameters of its own


def test_unreadable_is_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_text("not a model")
    r = run_cli("diff", str(bad), str(FIXTURES / "tiny_seed.safetensors"))
    assert r.code == 2 and len(r.stderr.strip().splitlines()) == 1 and "bad.safetensors" in r.stderr
    r = run_cli("diff", str(FIXTURES / "tiny_seed.safetensors"), str(tmp_path / "missing.pth"))
    assert r.code == 2 and "missing.pth" in r.stderr


def test_values_of_legacy_files(tmp_path: Path) -> None:
    pytest.importorskip("numpy")
    a = {"w": torch.randn(30, 4), "v": torch.arange(10.0)[::2]}  # v: a strided view of a bigger storage
    b = {k: v.clone() for k, v in a.items()}
    b["w"][2, 1] += 1.5
    pa, pb, pl = tmp_path / "a.pth", tmp_path / "b_legacy.pt", tmp_path / "a_legacy.pt"
    torch.save(a, pa)
    torch.save(a, pl, _use_new_zipfile_serialization=False)
    torch.save(b, pb, _use_new_zipfile_serialization=False)
    assert diff_paths(pa, pl, values=True).identical
    r = diff_paths(pa, pb, values=True)
    assert [v.key for v in r.values or () if v.equal is False] == ["w"]
