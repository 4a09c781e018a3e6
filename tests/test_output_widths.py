"""Output for every terminal and for pipes: every README example at 60, 80 and 120 columns and piped.

Whatever the width, no line ends in a space, no number is cut (`86,160…`), every number the wide run
prints is printed whole in the narrow one (tables shrink, wrap or stack, they never drop a figure), and no
line is wider than the terminal. The layout rules themselves (`render.layout`) are tested on tables built
here, against the plain text of their cells.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.text import Text

from modelscope_inspect.render.layout import Bar, Column, Table, wrap
from modelscope_inspect.render.output import strip_trailing
from tests.readme_examples import ROOT, examples

EXAMPLES = examples()
WIDTHS = (60, 80, 120)
_NUMBER = re.compile(r"\d[\d,.]*\d|\d")
_CUT = re.compile(r"\d…|…\d")


def _numbers(text: str) -> Counter[str]:
    return Counter(_NUMBER.findall(text))


def _run_at(args: list[str], width: int) -> tuple[int, str]:
    from typer.testing import CliRunner

    from modelscope_inspect.cli import app

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        result = CliRunner().invoke(app, args, env={"COLUMNS": str(width), "NO_COLOR": "1", "TERM": "dumb"})
    finally:
        os.chdir(cwd)
    return result.exit_code, result.stdout


def _run_piped(args: list[str]) -> tuple[int, str]:
    """A real process with stdin, stdout and stderr that are no terminal and no COLUMNS: what `| less` gets."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(NO_COLOR="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "modelscope_inspect", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode, proc.stdout


def _check(out: str, width: int, wide: str, where: str) -> None:
    lines = out.split("\n")
    trailing = [n for n, line in enumerate(lines, 1) if line != line.rstrip()]
    assert not trailing, f"{where}: lines {trailing} end in a space"
    cut = [line for line in lines if _CUT.search(line)]
    assert not cut, f"{where}: a number is cut: {cut}"
    over = [line for line in lines if len(line) > width]
    assert not over, f"{where}: lines wider than {width}: {over}"
    missing = _numbers(wide) - _numbers(out)
    assert not missing, f"{where}: numbers of the 120-column run not printed whole: {dict(missing)}"


@pytest.mark.parametrize("ex", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_readme_example_at_every_width(ex) -> None:  # type: ignore[no-untyped-def]
    code_wide, wide = _run_at(ex.args, 120)
    assert code_wide in (0, 1), wide
    # Markdown is laid out by its renderer, not the terminal (a table row cannot wrap): it must fit 80 columns,
    # the README's width, whatever the terminal's.
    for width in (80,) if "--markdown" in ex.args else WIDTHS:
        code, out = _run_at(ex.args, width)
        assert code == code_wide
        _check(out, width, wide, f"{ex.name} at {width} columns")
    code, out = _run_piped(ex.args)
    assert code == code_wide
    _check(out, 80, wide, f"{ex.name} piped")


def test_readme_examples_are_rendered_at_80_columns() -> None:
    from tests import readme_examples

    assert readme_examples.WIDTH == 80
    for ex in EXAMPLES:
        assert all(len(line) <= 80 for line in ex.output.split("\n")), ex.name


def test_params_at_60_columns_keeps_every_number() -> None:
    # The case of the issue: `mi params` at 60 columns printed `86,160…` and `total 191,19…`.
    args = ["params", "--vocab", "168283", "--d-model", "512", "--layers", "6"]
    _, out = _run_at(args, 60)
    assert "86,160,896" in out and "191,196,672" in out and "…" not in out


def test_check_keeps_a_number_with_its_unit() -> None:
    # `50,176 B (49.0` / `KiB)` at 80 columns: a number and its unit stay on one line.
    args = ["check", "examples/tiny-gpt2", "--max-size", "1MB", "--max-params", "20K", "--allow-dtypes", "bf16,f16",
            "--max-share", "embedding=0.5", "--no-config"]  # fmt: skip
    for width in (60, 80):
        _, out = _run_at(args, width)
        assert "(49.0 KiB)" in out and "50,176 B" in out, out


def test_strip_trailing_keeps_colour_codes() -> None:
    assert strip_trailing("a  \x1b[0m\nb \n") == "a\x1b[0m\nb\n"
    assert strip_trailing("x\t\n") == "x\n"


def test_coloured_terminal_output_has_no_trailing_spaces() -> None:
    # A terminal (colour on) gets its lines padded by rich inside styled spans; the sink strips them too.
    from modelscope_inspect.render.output import Output

    console = Console(width=70, force_terminal=True, color_system="standard", highlight=False, markup=False)
    out = Output()
    out.__dict__["console"] = console  # the cached property, replaced for this test
    t = Table(Column("name", wrap=True), Column("n", "right"), Column("", bar=True), title="t")
    t.add_row(Text("a", style="bold"), "1,234", Bar(0.5))
    with console.capture() as cap:
        console.print(t)
    assert "\x1b[" in cap.get()
    assert all(line == strip_trailing(line) for line in strip_trailing(cap.get()).split("\n"))


def _render(t: Table, width: int) -> str:
    console = Console(width=width, no_color=True, highlight=False, markup=False, soft_wrap=False)
    with console.capture() as cap:
        console.print(t)
    return strip_trailing(cap.get())


_NUM = st.integers(min_value=0, max_value=10**12).map(lambda n: f"{n:,}")
_WORD = st.text(alphabet="abcdefghij._-·×", min_size=1, max_size=14)
_TEXT = st.lists(_WORD, min_size=1, max_size=6).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.tuples(_TEXT, _NUM, _NUM, st.floats(0, 1), _TEXT), min_size=1, max_size=6),
    width=st.integers(min_value=20, max_value=130),
)
def test_tables_never_cut_a_number(rows: list[tuple[str, str, str, float, str]], width: int) -> None:
    t = Table(
        Column("name", wrap=True, hang="  "),
        Column("params", "right"),
        Column("bytes", "right"),
        Column("", bar=True),
        Column("note", wrap=True),
        title="table",
    )
    for name, a, b, share, note in rows:
        t.add_row(name, a, b, Bar(share), note)
    out = _render(t, width)
    for a, b in ((r[1], r[2]) for r in rows):
        assert a in out and b in out  # whole, on one line
    assert "…" not in out
    widest_number = max(len(x) for r in rows for x in (r[1], r[2]))
    if width >= widest_number + 2 + len("params"):  # a stacked line `  params N` fits
        assert all(len(line) <= width for line in out.split("\n")), out
    # Every character of every cell is printed (wrapping moves text, never drops it).
    cells = "".join(f"{name}{a}{b}{note}" for name, a, b, _, note in rows)
    assert Counter(re.sub(r"\s", "", out)) >= Counter(re.sub(r"\s", "", cells))


def test_bars_shrink_before_text_wraps_and_go_before_numbers() -> None:
    t = Table(Column("term", wrap=True), Column("params", "right"), Column("", bar=True))
    t.add_row("embedding of the vocabulary", "86,160,896", Bar(0.45, 16))
    natural = _render(t, 120).split("\n")[1]
    assert natural.startswith("embedding of the vocabulary  86,160,896  ") and len(natural) == 27 + 2 + 10 + 2 + 8
    # 12 cells less than the natural 57: the bar gives them (16 → 4 cells), the name stays on one line.
    narrower = _render(t, 45).split("\n")
    assert narrower[1] == "embedding of the vocabulary  86,160,896  █▊", narrower
    # Narrower still: the name wraps at its words, the number stays whole, the bar keeps its 4 cells.
    tight = _render(t, 41).split("\n")
    assert tight[1] == "embedding of the         86,160,896  █▊" and tight[2] == "vocabulary", tight
    # Narrower than the name's longest word allows: the bar goes.
    assert "█" not in _render(t, 24) and "86,160,896" in _render(t, 24)


def test_table_stacks_when_numbers_alone_do_not_fit() -> None:
    t = Table(Column("term", wrap=True), Column("each", "right"), Column("params", "right"))
    t.add_row("embedding", "131,072,000,000", "131,072,000,000")
    out = _render(t, 24)
    assert out.split("\n")[0] == "embedding"
    assert "131,072,000,000" in out and out.count("131,072,000,000") == 2 and "…" not in out


def test_wrap_breaks_names_at_their_parts() -> None:
    lines = [t.plain for t in wrap(Text("torch.nn.modules.linear.NonDynamicallyQuantizableLinear"), 40)]
    assert lines == ["torch.nn.modules.linear.", "NonDynamicallyQuantizableLinear"]
    lines = [t.plain for t in wrap(Text("1,000,000 B (976.6 KiB)"), 12)]
    assert lines == ["1,000,000 B", "(976.6 KiB)"]
