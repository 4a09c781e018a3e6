"""Tables and paragraphs that fit the width they are given, and never cut a number.

rich's own tables keep every column at its natural width until the table overflows, then cut cells with `…`
(numbers included) while fixed-width bars keep their width, and they pad every cell with spaces up to the
end of the line. The views build their tables here instead. At render time, for the width rich hands over:

1. every column at its natural width, when that fits;
2. else bars shrink first, down to `BAR_MIN` cells;
3. else text columns (`wrap=True`: names, formulas, notes) wrap, the widest first, never below their minimum
   (their longest word, up to `SOFT_MIN` cells; their longest number always);
4. else the bars are dropped (the share column next to them says the same);
5. else the table stacks: one block per row, the first cell on its own line and every other cell under it
   as `header  value`.

Numbers are never wrapped or cut: a fixed column (`wrap=False`, the default) keeps its natural width, and
text wraps at spaces first, but not at a space that follows a digit (`50,176 B`, `49.0 KiB`, `5,312 params`
stay whole) nor at a no-break space (`NBSP`, written as a plain space), then after `. / _ · , × - )`
outside numbers, and folds only a word that is longer than the column. No line ends in a space.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from rich.cells import cell_len
from rich.measure import Measurement
from rich.text import Text

from .units import share_bar

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult

NBSP = "\u00a0"  # a space the wrapper never breaks at; printed as a plain space
GAP = 2  # spaces between two columns
BAR_MIN = 4  # a bar narrower than this says nothing: drop it instead
SOFT_MIN = 12  # a text column is not squeezed below its longest word, up to this many cells
STACK_INDENT = 2

Justify = Literal["left", "right"]
_NUMBER = re.compile(r"\d[\d,.]*\d|\d")
_BREAK_AFTER = frozenset("./_·,×-):;]")


@dataclass(frozen=True, slots=True)
class Column:
    """One column: `wrap` for text that may wrap when the table is too wide; numbers stay fixed."""

    header: str = ""
    justify: Justify = "left"
    wrap: bool = False
    style: str = ""
    bar: bool = False  # cells are `Bar`s: shrinks first, dropped before anything else gives way
    hang: str = ""  # continuation lines of a wrapped cell start with this (a term's second line is indented)


@dataclass(frozen=True, slots=True)
class Bar:
    """A share in [0, 1] drawn as a bar; `width` is its width when there is room."""

    share: float
    width: int = 16


@dataclass(frozen=True, slots=True)
class Hang:
    """A text cell whose continuation lines start with `prefix` (a tree's indentation, a bullet's hang).

    The first `lead` characters (the tree branch, the bullet) are never broken.
    """

    text: Text
    prefix: str
    lead: int = 0


Cell = str | Text | Bar | Hang


def _as_text(cell: str | Text, style: str = "") -> Text:
    if isinstance(cell, Text):
        return cell
    return Text(cell, style=style)


def _spans(s: str) -> list[tuple[int, int]]:
    return [m.span() for m in _NUMBER.finditer(s)]


def _inside_number(p: int, numbers: Sequence[tuple[int, int]]) -> tuple[int, int] | None:
    """The number span that position `p` (a break between `s[p-1]` and `s[p]`) would split, if any."""
    for a, b in numbers:
        if a < p < b:
            return a, b
    return None


def _soft_space(s: str, p: int) -> bool:
    """A space where a line may break: not one next to a digit (a number keeps its unit and its name:
    `49.0 KiB`, `seq 8192`) nor next to `=` (`s = 8192`)."""
    if s[p] != " " or not 0 < p < len(s) - 1:
        return False
    before, after = s[p - 1], s[p + 1]
    return not (before.isdigit() or after.isdigit() or before == "=" or after == "=")


def _words(s: str) -> list[str]:
    """The pieces between the preferred break points (soft spaces)."""
    out, start = [], 0
    for p, ch in enumerate(s):
        if ch == " " and _soft_space(s, p):
            out.append(s[start:p])
            start = p + 1
    out.append(s[start:])
    return [w for w in out if w.strip()]


def min_width(text: str, lead: int = 0) -> int:
    """The narrowest a column holding `text` should get: its longest word (up to `SOFT_MIN`), and never
    narrower than its longest number."""
    widest = 0
    for line in text.split("\n"):
        head, body = line[:lead], line[lead:]
        words = _words(body)
        word = max((cell_len(w) for w in words), default=0)
        number = max((b - a for a, b in _spans(body)), default=0)
        widest = max(widest, cell_len(head) + max(min(word, SOFT_MIN), number))
    return widest


def _fit_end(s: str, start: int, width: int) -> int:
    """The largest `e` with `s[start:e]` at most `width` cells."""
    used = 0
    for i in range(start, len(s)):
        used += cell_len(s[i])
        if used > width:
            return i
    return len(s)


def _break(s: str, start: int, width: int, lead: int, numbers: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """Where the line starting at `start` ends (`cut`) and the next begins (`resume`)."""
    lim = _fit_end(s, start, width)
    low = max(start + 1, lead)
    # 1: a soft space, the last one that keeps the line within the width.
    for p in range(min(lim, len(s) - 1), low - 1, -1):
        if _soft_space(s, p):
            return p, p + 1
    # 2: a space after a digit, or after punctuation that ends a part of a name, outside any number.
    for p in range(lim, low - 1, -1):
        if p < len(s) and s[p] == " ":
            return p, p + 1
        if s[p - 1] in _BREAK_AFTER and _inside_number(p, numbers) is None:
            return p, p
    # 3: fold the word, but never inside a number: the number starts the next line instead.
    cut = max(lim, start + 1)
    inside = _inside_number(cut, numbers)
    if inside is not None:  # a number wider than the line overflows it rather than being cut
        cut = inside[0] if inside[0] > start else inside[1]
    return cut, cut


def wrap(text: Text, width: int, *, prefix: str = "", lead: int = 0) -> list[Text]:
    """`text` as lines of at most `width` cells (continuation lines start with `prefix`), spaces at the
    breaks dropped, `NBSP` printed as a space."""
    out: list[Text] = []
    for para in text.split("\n", allow_blank=True):
        s = para.plain
        numbers = _spans(s)
        start, first, this_lead = 0, True, lead
        while True:
            pre = "" if first else prefix
            room = max(width - cell_len(pre), 1)
            if cell_len(s[start:]) <= room:
                piece = para[start:]
                cut = len(s)
            else:
                cut, resume = _break(s, start, room, this_lead, numbers)
                piece = para[start:cut]
            line = Text(pre) + piece if pre else piece
            line.rstrip()
            out.append(_plain_spaces(line))
            if cut >= len(s):
                break
            start, first, this_lead = resume, False, 0
            while start < len(s) and s[start] == " ":
                start += 1
            if start >= len(s):
                break
    return out


def _plain_spaces(line: Text) -> Text:
    if NBSP not in line.plain:
        return line
    return Text(line.plain.replace(NBSP, " "), style=line.style, spans=list(line.spans), end=line.end)


class Table:
    """A table of `Column`s that fits the width it is rendered at (see the module docstring)."""

    def __init__(self, *columns: Column, title: str | None = None, header: bool = True, gap: int = GAP) -> None:
        self.columns = list(columns)
        self.title = title
        self.header = header
        self.gap = gap
        self.rows: list[list[Cell]] = []

    def add_row(self, *cells: Cell) -> None:
        """One row; missing trailing cells are empty."""
        if len(cells) > len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append([*cells, *([""] * (len(self.columns) - len(cells)))])

    # ---- measuring ----------------------------------------------------------------------------------------

    def _cell_plain(self, cell: Cell) -> tuple[str, int, str]:
        """(text, lead, continuation prefix) of a text cell."""
        if isinstance(cell, Hang):
            return cell.text.plain, cell.lead, cell.prefix
        if isinstance(cell, Bar):
            return "", 0, ""
        return (cell.plain if isinstance(cell, Text) else cell), 0, ""

    def _natural(self, i: int) -> int:
        col = self.columns[i]
        widths = [cell_len(col.header)] if self.header else [0]
        for row in self.rows:
            cell = row[i]
            if isinstance(cell, Bar):
                widths.append(cell.width)
                continue
            text, _, _ = self._cell_plain(cell)
            widths.extend(cell_len(line) for line in text.split("\n"))
        return max(widths)

    def _minimum(self, i: int) -> int:
        col = self.columns[i]
        if col.bar:
            return BAR_MIN
        if not col.wrap:
            return self._natural(i)
        widths = [max((cell_len(w) for w in col.header.split()), default=0)] if self.header else [0]
        for row in self.rows:
            text, lead, prefix = self._cell_plain(row[i])
            prefix = prefix or col.hang
            widths.append(max(min_width(text, lead), cell_len(prefix) + min_width(text.lstrip()) if prefix else 0))
        return max(widths)

    def _total(self, widths: dict[int, int]) -> int:
        return sum(widths.values()) + self.gap * max(len(widths) - 1, 0)

    def widths(self, width: int) -> dict[int, int] | None:
        """Column index → width for a table `width` cells wide (bar columns may be left out), or None when
        only stacking fits."""
        natural = {i: self._natural(i) for i in range(len(self.columns))}
        if self._total(natural) <= width:
            return natural
        minimum = {i: self._minimum(i) for i in natural}
        for with_bars in (True, False):
            ws = {i: w for i, w in natural.items() if with_bars or not self.columns[i].bar}
            excess = self._total(ws) - width
            for i in ws:
                if self.columns[i].bar and excess > 0:
                    give = min(excess, ws[i] - minimum[i])
                    ws[i] -= give
                    excess -= give
            while excess > 0:
                shrinkable = [i for i in ws if self.columns[i].wrap and ws[i] > minimum[i]]
                if not shrinkable:
                    break
                widest = max(shrinkable, key=lambda i: (ws[i], i))
                ws[widest] -= 1
                excess -= 1
            if excess <= 0:
                return ws
        return None

    # ---- rendering ------------------------------------------------------------------------------------------

    def _lines(self, cell: Cell, col: Column, width: int) -> list[Text]:
        if isinstance(cell, Bar):
            return [Text(share_bar(cell.share, width).rstrip(), style=col.style)]
        if isinstance(cell, Hang):
            t = cell.text.copy()
            if col.style:
                t.stylize(col.style, 0, len(t))
            return wrap(t, width, prefix=cell.prefix, lead=cell.lead)
        t = _as_text(cell, col.style)
        if isinstance(cell, Text) and col.style:
            t = Text(style=col.style) + cell
        if not col.wrap:  # fixed: as it is, one line per line of the cell
            return [_plain_spaces(x) for x in t.split("\n", allow_blank=True)]
        return wrap(t, width, prefix=col.hang)

    def _row_lines(self, cells: Sequence[Cell], widths: dict[int, int], header: bool = False) -> list[Text]:
        cols = list(widths)
        per = []
        for i in cols:
            col = self.columns[i]
            if header:
                col = Column(col.header, col.justify, col.wrap, "table.header", hang=col.hang)
            per.append(self._lines(cells[i], col, widths[i]))
        height = max(len(p) for p in per)
        out = []
        for k in range(height):
            line = Text()
            for n, i in enumerate(cols):
                piece = per[n][k] if k < len(per[n]) else Text("")
                pad = widths[i] - piece.cell_len
                if n:
                    line.append(" " * self.gap)
                if self.columns[i].justify == "right":
                    line.append(" " * max(pad, 0))
                    line.append_text(piece)
                else:
                    line.append_text(piece)
                    line.append(" " * max(pad, 0))
            line.rstrip()
            out.append(line)
        return out

    def lines(self, width: int) -> list[Text]:
        """The table as lines of at most `width` cells (wider only where one word or number is wider)."""
        out: list[Text] = []
        if self.title:
            out.extend(wrap(Text(self.title, style="table.title"), width))
        widths = self.widths(width)
        if widths is None:
            return out + self._stacked(width)
        if self.header and any(c.header for c in self.columns):
            out.extend(self._row_lines([c.header for c in self.columns], widths, header=True))
        for row in self.rows:
            out.extend(self._row_lines(row, widths))
        return out

    def _stacked(self, width: int) -> list[Text]:
        """One block per row: the first cell on its own line, then the other cells as `header value`
        items, separated by ` · ` and wrapped under it (bars left out)."""
        out: list[Text] = []
        col0 = self.columns[0]
        indent = " " * STACK_INDENT
        for row in self.rows:
            out.extend(self._lines(row[0], Column(wrap=True, style=col0.style, hang=indent), width))
            items: list[Text] = []
            for i, cell in enumerate(row[1:], start=1):
                col = self.columns[i]
                if isinstance(cell, Bar) or col.bar:
                    continue
                body = cell.text.copy() if isinstance(cell, Hang) else _as_text(cell, col.style).copy()
                if not body.plain.strip():
                    continue
                if col.style and isinstance(cell, Text):
                    body = Text(style=col.style) + body
                key = Text(col.header + NBSP, style="table.header") if self.header and col.header else Text()
                items.append(key + body)
            if items:
                line = Text(indent) + Text(" · ").join(items)
                out.extend(wrap(line, width, prefix=indent, lead=STACK_INDENT))
        return out

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from _emit(self.lines(options.max_width))

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        natural = {i: self._natural(i) for i in range(len(self.columns))}
        return Measurement(1, min(self._total(natural), options.max_width))


def _emit(lines: list[Text]) -> Iterable[Text]:
    for line in lines:
        # Laid out already: rich must neither re-wrap nor crop a line (one that is wider than the width holds
        # a number wider than the width, which is printed whole).
        line.end, line.no_wrap, line.overflow = "\n", True, "ignore"
        yield line


class Para:
    """A paragraph wrapped like a table cell (numbers whole, `NBSP` kept), continuation lines hung by
    `prefix`."""

    def __init__(self, text: str | Text, *, prefix: str = "", lead: int = 0, style: str = "") -> None:
        self.text = _as_text(text, style)
        self.prefix = prefix
        self.lead = lead

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from _emit(wrap(self.text, options.max_width, prefix=self.prefix, lead=self.lead))


def bullets(items: Iterable[str | Text], marker: str = "  - ", *, title: str | Text | None = None,
            style: str = "") -> Table:  # fmt: skip
    """A list, one item per row, each wrapped under its own first character after `marker`."""
    t = Table(Column(wrap=True, style=style), header=False)
    if title is not None:
        t.add_row(Hang(_as_text(title), prefix="  "))
    for item in items:
        body = _as_text(item)
        t.add_row(Hang(Text(marker) + body, prefix=" " * cell_len(marker), lead=len(marker)))
    return t


def grid(rows: Iterable[tuple[str | Text, ...]], *, columns: Sequence[Column] | None = None) -> Table:
    """A header-less key/value grid: a bold key column, then text that wraps."""
    cols = list(columns) if columns is not None else [Column(style="bold"), Column(wrap=True)]
    t = Table(*cols, header=False)
    for row in rows:
        t.add_row(*row)
    return t
