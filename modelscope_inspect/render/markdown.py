"""`--markdown`: the tables a view prints, as GitHub-flavoured Markdown (PR comments, `$GITHUB_STEP_SUMMARY`).

Fed the very renderables the terminal view gets (`layout.Table`, `Para`, strings), so the two never disagree:
- a table with headers becomes a GFM table (numbers right-aligned, share bars as text bars), its title a bold
  line above it; a tree's labels are code spans, so that their indentation survives;
- a header-less key/value grid becomes a list of `**key** value` items, a bullet list a Markdown list;
- strings and paragraphs become paragraphs.
Text from model files is untrusted: Markdown and HTML punctuation is backslash-escaped (`|` included, which
would otherwise end a cell), and no raw HTML is ever written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rich.console import RenderableType
from rich.text import Text

from .layout import NBSP, Bar, Cell, Hang, Para, Table
from .units import share_bar

BAR_WIDTH = 12
# What Markdown or HTML would act on: `[` opens every link and image (a lone `]` or `!` is text), `&` an entity.
_SPECIAL = re.compile(r"([\\`*\[<>|~&])")
_EDGE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")  # `embed_tokens` stays as it is
_TREE = re.compile(r"^[ │├└─]+")


def escape(text: str) -> str:
    """Inline text with nothing Markdown or HTML would act on (intraword `_` is left alone: GFM ignores it)."""
    text = text.replace(NBSP, " ").replace("\n", " ")
    text = _SPECIAL.sub(r"\\\1", text)
    return _EDGE_UNDERSCORE.sub(r"\\_", text)


def _paragraph(text: str) -> str:
    """A paragraph: inline-escaped, and a start that would open a heading, list or rule escaped too."""
    out = escape(text)
    if out.startswith(("#", "-", "+", "=")) or re.match(r"\d+[.)](\s|$)", out):
        return "\\" + out
    return out


def code(text: str) -> str:
    """A code span holding `text` exactly (a fence longer than any backtick run in it); `|` escaped for tables."""
    text = text.replace(NBSP, " ").replace("\n", " ")
    run = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (run + 1)
    # CommonMark drops one space from each end when both ends have one, and a fence cannot touch a backtick.
    edge = text.startswith("`") or text.endswith("`") or (text.startswith(" ") and text.endswith(" "))
    pad = " " if edge else ""
    return f"{fence}{pad}{text.replace('|', chr(92) + '|')}{pad}{fence}"


def _plain(cell: Cell) -> str:
    if isinstance(cell, Hang):
        return cell.text.plain
    if isinstance(cell, Text):
        return cell.plain
    if isinstance(cell, Bar):
        return ""
    return cell


def _cell(cell: Cell) -> str:
    if isinstance(cell, Bar):
        return share_bar(cell.share, BAR_WIDTH).rstrip() if cell.share > 0 else ""
    text = _plain(cell)
    if _TREE.match(text) and any(ch in text for ch in "├└"):
        return code(text)  # a tree row: the branch lines only read in a fixed-width font, spaces kept
    return escape(text)


def _table(t: Table) -> list[str]:
    out: list[str] = []
    if t.title:
        out += [f"**{escape(t.title)}**", ""]
    cols = list(range(len(t.columns)))
    head = [escape(t.columns[i].header) or (" " if t.columns[i].bar else "") for i in cols]
    align = ["---:" if t.columns[i].justify == "right" else "---" for i in cols]
    out.append("| " + " | ".join(head) + " |")
    out.append("| " + " | ".join(align) + " |")
    for row in t.rows:
        out.append("| " + " | ".join(_cell(row[i]) for i in cols) + " |")
    return out


def _list(t: Table) -> list[str]:
    """A header-less table: a bullet list (`bullets()`), or `**key** value` items for a key/value grid."""
    out: list[str] = []
    if len(t.columns) == 1:
        for row in t.rows:
            text = _plain(row[0])
            stripped = text.lstrip()
            if stripped.startswith(("- ", "• ", "* ")):
                out.append("- " + escape(stripped[2:]))
            else:  # the list's title
                if out:
                    out.append("")
                out += [_paragraph(stripped), ""]
        return out
    for row in t.rows:
        key, *rest = (_plain(c) for c in row)
        values = " · ".join(escape(v) for v in rest if v.strip())
        out.append(f"- **{escape(key)}** {values}".rstrip() if key.strip() else f"- {values}")
    return out


def _block(item: RenderableType) -> list[str]:
    if isinstance(item, Table):
        return _table(item) if item.header and any(c.header for c in item.columns) else _list(item)
    if isinstance(item, Para):
        return [_paragraph(item.text.plain)]
    if isinstance(item, Text):
        return [_paragraph(item.plain)]
    if isinstance(item, str):
        return [_paragraph(item)] if item.strip() else []
    raise TypeError(f"no Markdown form for {type(item).__name__}")


def to_markdown(items: Iterable[RenderableType]) -> str:
    """The renderables of a view as one Markdown document (blocks separated by one blank line)."""
    blocks = [b for b in (_block(i) for i in items) if b]
    return "\n\n".join("\n".join(line.rstrip() for line in b) for b in blocks) + "\n"
