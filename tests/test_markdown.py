"""`--markdown`: each command's tables rendered by a real Markdown library (markdown-it-py, CommonMark with
GFM tables, raw HTML on as GitHub's sanitizer-free parsers have it) and the parsed cells checked."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

import modelscope_inspect as mi
from tests.conftest import run_cli

markdown_it = pytest.importorskip("markdown_it")


class _Cells(HTMLParser):
    """Tables of rendered HTML as lists of rows of cell text; every tag seen."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.tags: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def render(text: str) -> _Cells:
    html = markdown_it.MarkdownIt("commonmark").enable("table").render(text)
    cells = _Cells()
    cells.feed(html)
    return cells


def _md(*args: str, code: int = 0) -> str:
    r = run_cli(*args, "--markdown", env={"COLUMNS": "80"})
    assert r.code == code, r.stderr
    assert all(line == line.rstrip() for line in r.stdout.split("\n"))
    return r.stdout


def _table(cells: _Cells, header: list[str]) -> list[list[str]]:
    for t in cells.tables:
        if t and t[0] == header:
            assert all(len(row) == len(header) for row in t), t  # no cell split or lost
            return t[1:]
    raise AssertionError(f"no table with header {header}: {[t[0] for t in cells.tables if t]}")


def test_inspect_markdown_cells() -> None:
    inv = mi.load("examples/tiny-gpt2")
    cells = render(_md("inspect", "examples/tiny-gpt2"))
    dtypes = _table(cells, ["dtype", "params", "bytes", "share"])
    assert dtypes == [["f32", f"{inv.total_params:,}", "46.5 KiB", "100.0%"]]
    tree = _table(cells, ["module", "params", "bytes", "share", ""])
    by_label = {row[0]: row for row in tree}
    # Tree labels keep their branch lines and indentation (code spans); shares are the text bars.
    assert by_label["   └─ wte"][1:4] == ["4.8K", "18.8 KiB", "40.3%"]  # [300×16] f32 of 11,904
    assert by_label["   └─ wte"][4] == "████▉"
    assert by_label["└─ transformer"][4] == "█" * 12


def test_tensor_names_are_escaped(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from tests.report_models import HOSTILE_NAMES, write_hostile

    model = write_hostile(tmp_path)
    out = _md("inspect", str(model), "--tensors")
    cells = render(out)
    rows = _table(cells, ["name", "shape", "dtype", "params", "bytes", "note"])
    names = {r[0] for r in rows}
    # Every name comes back whole: `|` did not split a cell, `<…>` made no element, `<!--` opened no comment.
    assert set(HOSTILE_NAMES) <= names
    assert "img" not in cells.tags and "script" not in cells.tags
    assert "a\\|b" in out  # the pipe, escaped in the source


@pytest.mark.parametrize(
    ("args", "header", "code"),
    [
        (("params", "--vocab", "168283", "--d-model", "512", "--layers", "6"), None, 0),
        (("memory", "--config", "examples/configs/llama-3-8b.json", "--seq", "8192"), None, 0),
        (("check", "examples/tiny-gpt2", "--max-size", "1MB", "--allow-dtypes", "bf16"), None, 1),
        (("diff", "fixtures/tiny_seed.safetensors", "examples/tiny-gpt2"), None, 1),
        (("scan", "fixtures/tiny_seed_whole.pth"), None, 1),
    ],
)
def test_every_command_renders(args: tuple[str, ...], header: list[str] | None, code: int) -> None:
    out = _md(*args, code=code)
    cells = render(out)
    assert cells.tables, out
    for t in cells.tables:  # every row has as many cells as its header
        assert all(len(row) == len(t[0]) for row in t), t
    assert "script" not in cells.tags and "img" not in cells.tags


def test_params_total_and_scan_findings() -> None:
    params = render(_md("params", "--vocab", "168283", "--d-model", "512", "--layers", "6"))
    flat = [c for t in params.tables for row in t for c in row]
    assert "191,196,672" in " ".join(flat)  # the seed notes' hand formula for these sizes
    scan = render(_md("scan", "fixtures/tiny_seed_whole.pth", code=1))
    targets = [row[-1] for t in scan.tables for row in t[1:]]
    assert any("SeedDecoder" in x for x in targets), targets


@pytest.mark.parametrize(
    "args",
    [
        ("inspect", "examples/tiny-gpt2"),
        ("params", "--config", "examples/tiny-gpt2"),
        ("memory", "examples/tiny-gpt2"),
        ("check", "examples/tiny-gpt2", "--max-size", "1MB"),
        ("diff", "examples/tiny-gpt2", "examples/tiny-gpt2"),
        ("scan", "examples/tiny-gpt2"),
    ],
)
def test_json_and_markdown_together_is_a_usage_error(args: tuple[str, ...]) -> None:
    r = run_cli(*args, "--json", "--markdown")
    assert r.code == 2 and "choose one of --json and --markdown" in r.stderr
    if args[0] == "check":  # mi check --json prints a document in every case
        assert json.loads(r.stdout)["error"].endswith("choose one of --json and --markdown")
    else:
        assert r.stdout == ""
