"""What a file really is, before a reader parses it as its name says.

The broken downloads people meet most often are not corrupt model files but other files under a model's name:
a clone without `git lfs` leaves ~130-byte Git LFS pointer files, a failed download saves the server's HTML or
JSON error page, an interrupted copy leaves an empty file. Each gets one message that names the file and says
what to do, the same for every extension and from `mi inspect` and `mi scan` alike. A download cut short is
caught by each reader (it alone knows how long the file should be) through `truncated`, in one wording.

Only the first bytes are looked at (an LFS pointer is below 1,024 bytes by the spec, a page's title is near its
top), and no text here is ever executed or unescaped into anything but a message.
"""

from __future__ import annotations

import html
import json
import re

from ..errors import MalformedFileError, UnsupportedFormatError
from .pickle_walk import walk
from .source import ByteSource

# https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md: "version https://git-lfs.github.com/spec/v1",
# then `oid sha256:<64 hex>` and `size <bytes>`; pointer files are smaller than 1024 bytes. The hawser URL is
# the pre-release spelling git-lfs still accepts.
LFS_VERSIONS = (b"version https://git-lfs.github.com/spec/v1", b"version https://hawser.github.com/spec/v1")
LFS_MAX = 1024
TEXT_PROBE = 4096  # bytes read to name a text file (a page's <title>, a JSON error)
SHOWN = 60  # characters of a title, an error message or a first line quoted in a message
# Bytes that occur in text: printable ASCII and UTF-8, tab, newlines, form feed. A NUL or another control byte
# means binary (every model format has some in its first bytes: safetensors' length, GGUF's version, ...).
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)
# An OpenVINO IR's root element (a DOCTYPE before it is left to the reader, which refuses it by name).
_OPENVINO_IR = re.compile(r"(<\?xml[^>]*\?>\s*)?(<!--.*?-->\s*)*(<!DOCTYPE\s+net\b.*?)?<net[\s>]", re.DOTALL)
_HTML = ("<!doctype html", "<html", "<head", "<body", "<meta", "<title", "<script", "<div", "<p>", "<h1")
# Bytes a protocol 0/1 pickle can start with (MARK, GLOBAL, INST, constants, empty containers): such text may be a
# pickle and is left to the readers and the scanner. '<', '{', '[' and 'v' start no pickle.
_PICKLE_START = frozenset(b"(cidl}]).NILFSVJKMGTUXB")


def human_size(n: int) -> str:
    """`4943162336` → `'4.6 GiB'` (1024-based, labelled so), as the views print sizes."""
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{n:,} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def empty_file(display: str) -> UnsupportedFormatError:
    """The one message for a file of 0 bytes, whatever its extension."""
    return UnsupportedFormatError(
        "empty file (0 bytes), not a model: the download or copy did not finish", path=display, rule="empty-file"
    )


def truncated(
    display: str, declared: int, size: int, what: str = "the header", *, at_least: bool = False
) -> MalformedFileError:
    """The one message for a download cut short: `what` says the file holds `declared` bytes (`at_least`
    when only a lower bound is known), it has `size`."""
    bound = "at least " if at_least else ""
    return MalformedFileError(
        f"truncated: {what} declares {bound}{declared:,} bytes, the file has {size:,}; the download is incomplete",
        path=display,
        rule="truncated",
    )


def cut_inside(display: str, what: str, size: int) -> MalformedFileError:
    """A download cut short where no length says how long the file should be: it ends inside `what`."""
    return MalformedFileError(
        f"truncated: the file ends inside {what} at byte {size:,}; the download is incomplete",
        path=display,
        rule="truncated",
    )


def lfs_pointer(data: bytes, display: str) -> UnsupportedFormatError | None:
    """The error for a Git LFS pointer file, or None when `data` (the file's first bytes) is not one."""
    if not data.startswith(LFS_VERSIONS):
        return None
    try:
        text = data[:LFS_MAX].decode("utf-8")
    except UnicodeDecodeError:
        return None
    oid = size = None
    for line in text.splitlines()[1:]:
        key, _, value = line.partition(" ")
        if key == "oid" and value.startswith("sha256:"):
            oid = value[7:].strip()
        elif key == "size" and value.strip().isdigit():
            size = int(value.strip())
    facts = []
    if oid:
        facts.append(f"oid sha256:{oid[:8]}…" if len(oid) > 8 else f"oid sha256:{oid}")
    if size is not None:
        facts.append(human_size(size))
    shown = f" ({', '.join(facts)})" if facts else ""
    return UnsupportedFormatError(
        f"a Git LFS pointer{shown}, not the model: run `git lfs pull`", path=display, rule="lfs-pointer"
    )


def _text(data: bytes) -> str | None:
    """`data` as text, or None when it holds bytes that text does not (a cut UTF-8 sequence at the end is fine)."""
    if not data or _CONTROL.search(data):
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(data) - 3:
            return None
        return data[: exc.start].decode("utf-8", "replace")


def _quote(text: str) -> str:
    one = " ".join(text.split())
    return repr(one if len(one) <= SHOWN else one[: SHOWN - 1] + "…")


def _pickle_like(data: bytes, complete: bool) -> bool:
    """True when text may be a protocol 0/1 pickle (`(dp0`, `cos\\nsystem`): then it is not called text here."""
    if not data or data[0] not in _PICKLE_START:
        return False
    try:
        walk(data, where="<probe>")
    except MalformedFileError as exc:
        # Cut off by the end of the probe rather than broken: a longer pickle than the bytes looked at.
        return not complete and ("remain" in exc.message or "no end of line" in exc.message)
    # The walk returns only once it saw a global or a call: whatever breaks later, the scanner must see it.
    return True


def _json_summary(text: str, complete: bool) -> tuple[str, bool]:
    """What a JSON document says in brief, and whether it is an error message (a server's answer)."""
    if not complete:
        return "", False
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return "", False
    if isinstance(doc, dict):
        for key in ("error", "message", "detail", "errors"):
            value = doc.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value.get("code")
            if isinstance(value, str) and value.strip():
                return f'"{key}": {_quote(value)}', True
        keys = [k for k in doc if isinstance(k, str)][:4]
        return ("keys " + ", ".join(keys) + (", …" if len(doc) > 4 else "")) if keys else "", False
    return "", False


def text_file(data: bytes, size: int, display: str) -> UnsupportedFormatError | None:
    """The error for an HTML page, an XML or JSON document or other plain text saved under a model's name, or
    None when `data` (the file's first bytes, up to `TEXT_PROBE`) is binary or may be a pickle."""
    complete = len(data) >= size
    text = _text(data)
    if text is None:
        return None
    body = text.lstrip("\ufeff \t\r\n")
    lower = body[:TEXT_PROBE].lower()
    if body.startswith("<"):
        if _OPENVINO_IR.match(body):
            return None  # an OpenVINO IR model: text, but the model itself (its weights are in the .bin beside it)
        title = _TITLE.search(body)
        if any(lower.startswith(tag) for tag in _HTML) or "<html" in lower or title:
            shown = f" ({_quote(html.unescape(title.group(1)))})" if title and title.group(1).strip() else ""
            return UnsupportedFormatError(
                f"an HTML page{shown}, not a model file: the download failed", path=display, rule="html-page"
            )
        # S3, GCS and Azure answer a failed download with an XML <Error> document.
        code = re.search(r"<(?:Code|Message)>(.*?)</", body, re.DOTALL)
        shown = f" ({_quote(html.unescape(code.group(1)))})" if code else ""
        return UnsupportedFormatError(
            f"an XML document{shown}, not a model file: the download failed", path=display, rule="xml-file"
        )
    if body.startswith(("{", "[")):
        summary, is_error = _json_summary(body, complete)
        shown = f" ({summary})" if summary else ""
        advice = ": the download failed" if is_error else ""
        return UnsupportedFormatError(
            f"a JSON document{shown}, not a model file{advice}", path=display, rule="json-file"
        )
    if _pickle_like(data, complete):
        return None
    first = next((line for line in body.splitlines() if line.strip()), "")
    shown = f" (first line {_quote(first)})" if first else ""
    return UnsupportedFormatError(f"a text file{shown}, not a model file", path=display, rule="text-file")


def identify(src: ByteSource, head: bytes) -> UnsupportedFormatError | None:
    """The error for a file that is not what its name says (empty, LFS pointer, a page or text), or None.

    `head` is the file's first bytes (any length); more is read only when they look like text.
    """
    if src.size == 0:
        return empty_file(src.name)
    if _text(head[:64]) is None:
        return None
    data = head if len(head) >= min(src.size, TEXT_PROBE) else src.read_at(0, min(src.size, TEXT_PROBE))
    return lfs_pointer(data, src.name) or text_file(data, src.size, src.name)


__all__ = ["cut_inside", "empty_file", "human_size", "identify", "lfs_pointer", "text_file", "truncated"]
