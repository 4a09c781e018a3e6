"""A bounded, symbolic pickle decoder: reads a pickle opcode by opcode and never imports or calls anything.

Why not `pickle.Unpickler` with a strict `find_class`? The real unpickler trusts declared lengths
(`BINBYTES8`, `LONG4`), builds real containers of any size and runs `BUILD`/`__setstate__`
(see docs/SECURITY.md). This decoder keeps a symbolic stack and memo instead:

- constants (int, float, str, bytes, bool, None) become Python values (large byte strings become `Blob`),
- `GLOBAL`/`STACK_GLOBAL`/`INST`/`EXT*` become `Global` records (never resolved),
- `REDUCE`/`NEWOBJ`/`NEWOBJ_EX`/`OBJ`/`INST` become `Call` records, `BUILD` attaches state to them,
- persistent ids become `PersistentId`.

Every declared length is checked against the bytes left before it is read, and the number of opcodes,
memo entries, stack depth, container elements and integer digits are capped. `FRAME` boundaries are
read as CPython's unpicklers read them (see `_Reader`). The same decoder serves `mi inspect` (which
interprets the result) and `mi scan` (which reports every global and call it saw, with opcode offsets).
"""

from __future__ import annotations

import struct
from typing import Any

from ..errors import LimitExceededError, MalformedFileError


class Limits:
    """Resource caps for one pickle stream (defaults suit any real checkpoint)."""

    __slots__ = ("keep_bytes", "max_elements", "max_int_bytes", "max_marks", "max_memo", "max_ops", "max_stack",
                 "max_text_line")  # fmt: skip

    def __init__(
        self,
        max_ops: int = 50_000_000,
        max_memo: int = 10_000_000,
        max_stack: int = 5_000_000,
        max_elements: int = 50_000_000,
        max_marks: int = 100_000,
        max_int_bytes: int = 1024,
        max_text_line: int = 1 << 20,
        keep_bytes: int = 1 << 20,  # byte strings longer than this are kept as a Blob (length only)
    ) -> None:
        self.max_ops = max_ops
        self.max_memo = max_memo
        self.max_stack = max_stack
        self.max_elements = max_elements
        self.max_marks = max_marks
        self.max_int_bytes = max_int_bytes
        self.max_text_line = max_text_line
        self.keep_bytes = keep_bytes


DEFAULT_LIMITS = Limits()

# The symbolic values below are plain slotted classes rather than dataclasses: this module is on the start-up
# path of every `mi inspect x.pth`, and each dataclass costs about a millisecond to create at import.


class Global:
    """A reference to `module.name` that the pickle would import. Never resolved."""

    __slots__ = ("module", "name", "offset", "opcode")

    def __init__(self, module: str, name: str, offset: int, opcode: str) -> None:
        self.module = module
        self.name = name
        self.offset = offset
        self.opcode = opcode

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"

    def __repr__(self) -> str:
        return f"Global({self.qualname!r} at {self.offset})"


class Call:
    """`func(*args)` that the pickle would run (REDUCE, NEWOBJ, OBJ, INST). Never run."""

    __slots__ = ("args", "dict_items", "func", "kwargs", "list_items", "offset", "opcode", "state")

    def __init__(self, func: Any, args: Any, offset: int, opcode: str, kwargs: Any = None) -> None:
        self.func = func
        self.args = args
        self.offset = offset
        self.opcode = opcode
        self.kwargs = kwargs
        self.state: Any = None
        self.list_items: list[Any] = []
        self.dict_items: list[tuple[Any, Any]] = []

    def __repr__(self) -> str:
        return f"Call({_target_name(self.func)}, {self.opcode} at {self.offset})"


class PersistentId:
    """A persistent id (torch uses one per storage)."""

    __slots__ = ("offset", "pid")

    def __init__(self, pid: Any, offset: int) -> None:
        self.pid = pid
        self.offset = offset


class Blob:
    """A byte string too large to keep; only its length is recorded."""

    __slots__ = ("length",)

    def __init__(self, length: int) -> None:
        self.length = length


class Ext:
    """An extension-registry code (EXT1/2/4): resolved by copyreg at load time, so it is a global too."""

    __slots__ = ("code", "offset")

    def __init__(self, code: int, offset: int) -> None:
        self.code = code
        self.offset = offset


class SetLike:
    """A set or frozenset, kept as a list (its items may be unhashable symbols)."""

    __slots__ = ("frozen", "items")

    def __init__(self, items: list[Any], frozen: bool) -> None:
        self.items = items
        self.frozen = frozen


class _Mark:
    __slots__ = ()


MARK = _Mark()


class Event:
    """A global import or a call seen while walking: what `mi scan` reports."""

    __slots__ = ("kind", "offset", "opcode", "target")

    def __init__(self, offset: int, opcode: str, kind: str, target: str) -> None:
        self.offset = offset
        self.opcode = opcode
        self.kind = kind  # "global" or "call"
        self.target = target

    def __repr__(self) -> str:
        return f"Event({self.kind} {self.target} via {self.opcode} at {self.offset})"


class WalkResult:
    """The decoded value (symbolic) plus every global and call seen, in order."""

    __slots__ = ("end", "error", "events", "protocol", "rule", "value")

    def __init__(
        self, value: Any, events: list[Event], end: int, protocol: int, error: str | None = None, rule: str = ""
    ) -> None:
        self.value = value
        self.events = events
        self.end = end  # offset just past STOP
        self.protocol = protocol
        self.error = error  # set when decoding stopped early (fail closed: events so far are kept)
        self.rule = rule  # the rule of that error


def _root_name(obj: Any) -> str:
    if isinstance(obj, Global):
        return obj.qualname
    if isinstance(obj, Ext):
        return f"<extension code {obj.code}>"
    return f"<{type(obj).__name__}>"


def _call_name(root: str, depth: int) -> str:
    """How a callable is named in events: a global's name, or the result of calling one `depth` times."""
    if depth == 0:
        return root
    if depth == 1:
        return f"<result of calling {root}>"
    return f"<result of calling {root} ({depth} calls deep)>"


def _target_name(obj: Any) -> str:
    # Iterative: a chain of REDUCEs on call results (f()()()…) must not recurse once per link.
    depth = 0
    while isinstance(obj, Call):
        obj = obj.func
        depth += 1
    return _call_name(_root_name(obj), depth)


class _Reader:
    """Cursor over the pickle bytes that enforces declared lengths.

    FRAME boundaries are not enforced, as in CPython's C unpickler (`load_frame` in Modules/_pickle.c only
    checks that the frame's bytes are there, then rewinds): `pickle.loads(bytes)` runs opcodes that straddle
    a frame (`pickle.load(file)` refuses some), so the decoder reads them too (fickling's frame bypasses).
    """

    __slots__ = ("chunk_end", "data", "end", "file_mode", "pos", "straddled", "total", "where")

    def __init__(
        self, data: bytes | memoryview, start: int, where: str, total: int | None = None, file_mode: bool = False
    ) -> None:
        self.data = memoryview(data)
        self.pos = start
        # The C unpickler reading a file without peek() (torch.load hands it an io.BytesIO) holds one FRAME in
        # its buffer; a read or line that runs past the buffer drops the rest of it and reads on from the file
        # (`_Unpickler_ReadImpl`, `_Unpickler_Readline`). `file_mode` follows that reading; otherwise bytes are
        # contiguous, as for `pickle.loads`, and `straddled` records that the two readings may differ.
        self.file_mode = file_mode
        self.chunk_end = -1
        self.straddled = False
        self.end = len(data)
        self.total = self.end if total is None else total  # the whole stream's length when `data` is a prefix
        self.where = where

    def _rule(self, need: int) -> str:
        # `pickle-more`: the prefix ends first but the whole stream would have the bytes (read more and retry).
        return "pickle-more" if self.end < need <= self.total else "pickle-length"

    def _cross(self, need: int) -> None:
        """A read up to `need` in a FRAME's buffer: in file mode, one past the buffer starts after it."""
        if self.chunk_end >= 0:
            if need > self.chunk_end:
                self.straddled = True
                if self.file_mode:
                    self.pos = self.chunk_end
                self.chunk_end = -1
            elif need == self.chunk_end:
                self.chunk_end = -1

    def frame(self, n: int) -> None:
        """FRAME of `n` bytes: the C unpickler reads them into its buffer (unless they are there already)."""
        if self.chunk_end >= 0 and self.pos + n <= self.chunk_end:
            return
        if self.chunk_end >= 0:
            self.straddled = True
            if self.file_mode:
                self.pos = self.chunk_end
        self.chunk_end = self.pos + n if n and self.pos + n <= self.end else -1

    def take(self, n: int, what: str) -> memoryview:
        if n >= 0:
            self._cross(self.pos + n)
        pos = self.pos
        if n < 0 or pos + n > self.end:
            raise MalformedFileError(
                f"{what} at byte {pos} declares {n:,} bytes but only {self.end - pos:,} remain",
                path=self.where,
                rule=self._rule(pos + n) if n >= 0 else "pickle-length",
            )
        self.pos = pos + n
        return self.data[pos : pos + n]

    def line(self, what: str, limit: int) -> bytes:
        if self.chunk_end >= 0:
            nl = bytes(self.data[self.pos : self.chunk_end]).find(b"\n")
            if nl < 0:
                self._cross(self.chunk_end + 1)
        start = self.pos
        stop = min(self.end, start + limit + 1)
        idx = bytes(self.data[start:stop]).find(b"\n")
        if idx < 0:
            raise MalformedFileError(
                f"{what} at byte {start} has no end of line within {limit:,} bytes",
                path=self.where,
                rule=self._rule(stop + 1) if stop < start + limit + 1 else "pickle-text",
            )
        return bytes(self.take(idx + 1, what)[:-1])


def _int_from_text(text: bytes, where: str, limit: int) -> int:
    body = text.strip().rstrip(b"L")
    if len(body) > limit:
        raise LimitExceededError(f"integer with {len(body)} digits", path=where, rule="pickle-int")
    # CPython's C unpickler reads INT with strtol(s, &end, 0) and LONG with base 0: `0x10` and `010` are valid.
    for base in (0, 10, 8):
        try:
            return int(body, base)
        except ValueError:
            continue
    raise MalformedFileError(f"bad integer literal {text[:40]!r}", path=where, rule="pickle-text")


def _decode_string_literal(raw: bytes, where: str) -> bytes:
    # STRING arguments are repr()s of str in Python 2: quoted, with backslash escapes, which CPython decodes
    # with PyBytes_DecodeEscape (`codecs.escape_decode`).
    import codecs

    if len(raw) < 2 or raw[0] != raw[-1] or raw[:1] not in (b"'", b'"'):
        raise MalformedFileError("STRING argument is not quoted", path=where, rule="pickle-text")
    try:
        return bytes(codecs.escape_decode(raw[1:-1])[0])
    except (UnicodeError, ValueError):
        raise MalformedFileError("STRING argument has bad escapes", path=where, rule="pickle-text") from None


def walk(
    data: bytes | memoryview,
    *,
    start: int = 0,
    where: str = "<pickle>",
    limits: Limits = DEFAULT_LIMITS,
    persistent: bool = True,
    total: int | None = None,
) -> WalkResult:
    """Decode one pickle starting at `start`; return its symbolic value and the globals/calls it uses.

    Raises `MalformedFileError` when the stream is broken, unless events were already seen, in which case
    the partial result is returned with `error` set (a parse error after a dangerous global must still
    report that global). `total` is the whole stream's length when `data` is only its prefix: running out of
    the prefix is then rule `pickle-more`.

    A stream whose opcodes straddle a FRAME is read twice, as `pickle.loads` reads it and as the C unpickler
    reads it from a file (what torch.load does): the events of both are reported, so every global CPython
    could reach is named.
    """
    flat = _Reader(data, start, where, total)
    try:
        res = _walk(flat, limits, persistent)
    except MalformedFileError:
        if not flat.straddled:
            raise
        return _walk(_Reader(data, start, where, total, file_mode=True), limits, persistent)
    if not flat.straddled:
        return res
    try:
        alt = _walk(_Reader(data, start, where, total, file_mode=True), limits, persistent)
    except MalformedFileError:
        return res
    seen = {(e.offset, e.target) for e in res.events}
    res.events.extend(e for e in alt.events if (e.offset, e.target) not in seen)
    if res.error and not alt.error:
        res.value, res.end, res.error, res.rule = alt.value, alt.end, None, ""
    return res


def _walk(r: _Reader, limits: Limits, persistent: bool) -> WalkResult:
    where = r.where
    start = r.pos
    stack: list[Any] = []
    metastack: list[list[Any]] = []
    memo: dict[int, Any] = {}
    events: list[Event] = []
    protocol = 0
    ops = 0
    elements = 0
    lim = limits
    unpack_i = struct.Struct("<i").unpack
    unpack_I = struct.Struct("<I").unpack
    unpack_H = struct.Struct("<H").unpack
    unpack_Q = struct.Struct("<Q").unpack
    unpack_d = struct.Struct(">d").unpack

    def fail(msg: str, rule: str = "pickle-structure") -> MalformedFileError:
        return MalformedFileError(f"{msg} (opcode at byte {op_pos})", path=where, rule=rule)

    def pop() -> Any:
        if not stack:
            raise fail("pop from an empty stack")
        return stack.pop()

    def pop_mark() -> list[Any]:
        nonlocal stack
        if not metastack:
            raise fail("no MARK on the stack")
        items = stack
        stack = metastack.pop()
        return items

    def push(v: Any) -> None:
        if len(stack) >= lim.max_stack:
            raise LimitExceededError("stack deeper than the limit", path=where, rule="pickle-limit")
        stack.append(v)

    def count(n: int) -> None:
        nonlocal elements
        elements += n
        if elements > lim.max_elements:
            raise LimitExceededError("more container elements than the limit", path=where, rule="pickle-limit")

    def as_text(raw: memoryview | bytes, what: str) -> str:
        try:
            return bytes(raw).decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise fail(f"{what} is not valid UTF-8", "pickle-text") from None

    def py2_str(raw: Any) -> Any:
        # Python 2 `str` opcodes: CPython 3 decodes them with the unpickler's encoding (ASCII by default) and
        # pushes a `str`, so `S'os'\nS'system'\n\x93` is STACK_GLOBAL os.system. Bytes that are not ASCII fail
        # that decoding in CPython; they are kept as bytes here (torch loads them with encoding="latin1").
        if type(raw) is bytes:
            try:
                return raw.decode("ascii")
            except UnicodeDecodeError:
                return raw
        return raw

    def bytes_value(raw: memoryview) -> Any:
        return bytes(raw) if len(raw) <= lim.keep_bytes else Blob(len(raw))

    def add_global(module: Any, name: Any, opcode: str) -> Global:
        if not isinstance(module, str) or not isinstance(name, str):
            raise fail(f"{opcode} with non-string module or name")
        g = Global(module, name, op_pos, opcode)
        events.append(Event(op_pos, opcode, "global", g.qualname))
        return g

    # Root global and chain depth of every Call made here, by id (Calls that `func` refers to are alive),
    # so naming the callee of `f()()()…` costs O(1) per link instead of walking the chain each time.
    chains: dict[int, tuple[str, int]] = {}

    def add_call(func: Any, args: Any, opcode: str, kwargs: Any = None) -> Call:
        c = Call(func, args, op_pos, opcode, kwargs)
        if isinstance(func, Call):
            root, depth = chains.get(id(func)) or (_target_name(func.func), 0)
            depth += 1
        else:
            root, depth = _root_name(func), 0
        chains[id(c)] = (root, depth)
        events.append(Event(op_pos, opcode, "call", _call_name(root, depth)))
        return c

    def memo_put(idx: int) -> None:
        if not stack:
            raise fail("memo store from an empty stack")
        if idx not in memo and len(memo) >= lim.max_memo:
            raise LimitExceededError("more memo entries than the limit", path=where, rule="pickle-limit")
        memo[idx] = stack[-1]

    def memo_get(idx: int) -> None:
        if idx not in memo:
            raise fail(f"memo key {idx} was never stored", "pickle-memo")
        push(memo[idx])

    op_pos = start
    try:
        while True:
            op_pos = r.pos
            ops += 1
            if ops > lim.max_ops:
                raise LimitExceededError("more opcodes than the limit", path=where, rule="pickle-limit")
            code = r.take(1, "opcode")[0]
            if code == 0x71:  # BINPUT
                memo_put(r.take(1, "BINPUT")[0])
            elif code == 0x68:  # BINGET
                memo_get(r.take(1, "BINGET")[0])
            elif code == 0x58:  # BINUNICODE
                n = unpack_I(r.take(4, "BINUNICODE"))[0]
                push(as_text(r.take(n, "BINUNICODE"), "BINUNICODE"))
            elif code == 0x8C:  # SHORT_BINUNICODE
                n = r.take(1, "SHORT_BINUNICODE")[0]
                push(as_text(r.take(n, "SHORT_BINUNICODE"), "SHORT_BINUNICODE"))
            elif code == 0x94:  # MEMOIZE
                memo_put(len(memo))
            elif code == 0x4B:  # BININT1
                push(r.take(1, "BININT1")[0])
            elif code == 0x28:  # MARK
                if len(metastack) >= lim.max_marks:
                    raise LimitExceededError("MARKs nested deeper than the limit", path=where, rule="pickle-limit")
                metastack.append(stack)
                stack = []
            elif code == 0x74:  # TUPLE
                items = pop_mark()
                push(tuple(items))
            elif code == 0x29:  # EMPTY_TUPLE
                push(())
            elif code == 0x85:  # TUPLE1
                push((pop(),))
            elif code == 0x86:  # TUPLE2
                b = pop()
                a = pop()
                push((a, b))
            elif code == 0x87:  # TUPLE3
                c = pop()
                b = pop()
                a = pop()
                push((a, b, c))
            elif code == 0x51:  # BINPERSID
                if not persistent:
                    raise fail("persistent id in a pickle that should have none")
                push(PersistentId(pop(), op_pos))
            elif code == 0x50:  # PERSID
                pid = r.line("PERSID", lim.max_text_line)
                push(PersistentId(pid.decode("ascii", "replace"), op_pos))
            elif code == 0x52:  # REDUCE
                args = pop()
                func = pop()
                push(add_call(func, args, "REDUCE"))
            elif code == 0x4D:  # BININT2
                push(unpack_H(r.take(2, "BININT2"))[0])
            elif code == 0x4A:  # BININT
                push(unpack_i(r.take(4, "BININT"))[0])
            elif code == 0x89:  # NEWFALSE
                push(False)
            elif code == 0x88:  # NEWTRUE
                push(True)
            elif code == 0x4E:  # NONE
                push(None)
            elif code == 0x7D:  # EMPTY_DICT
                push({})
            elif code == 0x5D:  # EMPTY_LIST
                push([])
            elif code == 0x75:  # SETITEMS
                items = pop_mark()
                if len(items) % 2:
                    raise fail("SETITEMS with an odd number of items")
                count(len(items) // 2)
                target = pop()
                pairs = list(zip(items[0::2], items[1::2], strict=True))
                _set_items(target, pairs, fail)
                push(target)
            elif code == 0x73:  # SETITEM
                v = pop()
                k = pop()
                count(1)
                target = pop()
                _set_items(target, [(k, v)], fail)
                push(target)
            elif code == 0x65:  # APPENDS
                items = pop_mark()
                count(len(items))
                target = pop()
                _append(target, items, fail)
                push(target)
            elif code == 0x61:  # APPEND
                v = pop()
                count(1)
                target = pop()
                _append(target, [v], fail)
                push(target)
            elif code == 0x62:  # BUILD
                state = pop()
                target = pop()
                if isinstance(target, Call):
                    target.state = state
                    events.append(Event(op_pos, "BUILD", "call", f"{_target_name(target.func)}.__setstate__"))
                else:
                    # BUILD on a module, function or plain value: torch refuses it, we report it.
                    events.append(Event(op_pos, "BUILD", "call", f"<BUILD on {_target_name(target)}>"))
                    target = Call(Global("builtins", "setattr", op_pos, "BUILD"), (target, state), op_pos, "BUILD")
                    chains[id(target)] = ("builtins.setattr", 0)
                push(target)
            elif code == 0x2E:  # STOP
                value = pop()
                return WalkResult(value, events, r.pos, protocol)
            elif code == 0x80:  # PROTO
                protocol = r.take(1, "PROTO")[0]
                if protocol > 5:
                    raise fail(f"unsupported pickle protocol {protocol}", "pickle-protocol")
            elif code == 0x95:  # FRAME
                # Its length is not checked either: pickle._Unpickler reads a short last frame as it is.
                r.frame(unpack_Q(r.take(8, "FRAME"))[0])
            elif code == 0x93:  # STACK_GLOBAL
                name = pop()
                module = pop()
                push(add_global(module, name, "STACK_GLOBAL"))
            elif code == 0x63:  # GLOBAL
                module_b = r.line("GLOBAL", lim.max_text_line)
                name_b = r.line("GLOBAL", lim.max_text_line)
                push(add_global(module_b.decode("utf-8", "replace"), name_b.decode("utf-8", "replace"), "GLOBAL"))
            elif code == 0x69:  # INST: GLOBAL + OBJ in one
                module_b = r.line("INST", lim.max_text_line)
                name_b = r.line("INST", lim.max_text_line)
                cls = add_global(module_b.decode("utf-8", "replace"), name_b.decode("utf-8", "replace"), "INST")
                args = tuple(pop_mark())
                push(add_call(cls, args, "INST"))
            elif code == 0x6F:  # OBJ
                items = pop_mark()
                if not items:
                    raise fail("OBJ without a class")
                push(add_call(items[0], tuple(items[1:]), "OBJ"))
            elif code == 0x81:  # NEWOBJ
                args = pop()
                cls = pop()
                push(add_call(cls, args, "NEWOBJ"))
            elif code == 0x92:  # NEWOBJ_EX
                kwargs = pop()
                args = pop()
                cls = pop()
                push(add_call(cls, args, "NEWOBJ_EX", kwargs))
            elif code in (0x82, 0x83, 0x84):  # EXT1, EXT2, EXT4
                if code == 0x82:
                    ext = r.take(1, "EXT1")[0]
                elif code == 0x83:
                    ext = unpack_H(r.take(2, "EXT2"))[0]
                else:
                    ext = unpack_i(r.take(4, "EXT4"))[0]
                e = Ext(ext, op_pos)
                events.append(Event(op_pos, "EXT", "global", _target_name(e)))
                push(e)
            elif code == 0x72:  # LONG_BINPUT
                memo_put(unpack_I(r.take(4, "LONG_BINPUT"))[0])
            elif code == 0x6A:  # LONG_BINGET
                memo_get(unpack_I(r.take(4, "LONG_BINGET"))[0])
            elif code == 0x70:  # PUT
                memo_put(_int_from_text(r.line("PUT", 64), where, 32))
            elif code == 0x67:  # GET
                memo_get(_int_from_text(r.line("GET", 64), where, 32))
            elif code == 0x30:  # POP
                if stack:
                    stack.pop()
                else:
                    pop_mark()
            elif code == 0x31:  # POP_MARK
                pop_mark()
            elif code == 0x32:  # DUP
                if not stack:
                    raise fail("DUP on an empty stack")
                push(stack[-1])
            elif code == 0x8A:  # LONG1
                n = r.take(1, "LONG1")[0]
                push(int.from_bytes(r.take(n, "LONG1"), "little", signed=True))
            elif code == 0x8B:  # LONG4
                n = unpack_i(r.take(4, "LONG4"))[0]
                if n < 0 or n > lim.max_int_bytes:
                    raise LimitExceededError(f"LONG4 of {n:,} bytes", path=where, rule="pickle-int")
                push(int.from_bytes(r.take(n, "LONG4"), "little", signed=True))
            elif code == 0x49:  # INT
                text = r.line("INT", 4096)
                if text == b"00":
                    push(False)
                elif text == b"01":
                    push(True)
                else:
                    push(_int_from_text(text, where, lim.max_int_bytes))
            elif code == 0x4C:  # LONG
                push(_int_from_text(r.line("LONG", 1 << 16), where, lim.max_int_bytes))
            elif code == 0x46:  # FLOAT
                text = r.line("FLOAT", 256)
                try:
                    push(float(text))
                except ValueError:
                    raise fail("bad FLOAT literal", "pickle-text") from None
            elif code == 0x47:  # BINFLOAT
                push(unpack_d(r.take(8, "BINFLOAT"))[0])
            elif code == 0x42:  # BINBYTES
                n = unpack_I(r.take(4, "BINBYTES"))[0]
                push(bytes_value(r.take(n, "BINBYTES")))
            elif code == 0x43:  # SHORT_BINBYTES
                n = r.take(1, "SHORT_BINBYTES")[0]
                push(bytes(r.take(n, "SHORT_BINBYTES")))
            elif code == 0x8E:  # BINBYTES8
                n = unpack_Q(r.take(8, "BINBYTES8"))[0]
                push(bytes_value(r.take(n, "BINBYTES8")))
            elif code == 0x96:  # BYTEARRAY8
                n = unpack_Q(r.take(8, "BYTEARRAY8"))[0]
                push(bytes_value(r.take(n, "BYTEARRAY8")))
            elif code == 0x8D:  # BINUNICODE8
                n = unpack_Q(r.take(8, "BINUNICODE8"))[0]
                push(as_text(r.take(n, "BINUNICODE8"), "BINUNICODE8"))
            elif code == 0x54:  # BINSTRING
                n = unpack_i(r.take(4, "BINSTRING"))[0]
                push(py2_str(bytes_value(r.take(n, "BINSTRING"))))
            elif code == 0x55:  # SHORT_BINSTRING
                n = r.take(1, "SHORT_BINSTRING")[0]
                push(py2_str(bytes(r.take(n, "SHORT_BINSTRING"))))
            elif code == 0x53:  # STRING
                push(py2_str(_decode_string_literal(r.line("STRING", lim.max_text_line), where)))
            elif code == 0x56:  # UNICODE
                raw = r.line("UNICODE", lim.max_text_line)
                push(raw.decode("raw_unicode_escape", "replace"))
            elif code == 0x64:  # DICT
                items = pop_mark()
                if len(items) % 2:
                    raise fail("DICT with an odd number of items")
                count(len(items) // 2)
                d: dict[Any, Any] = {}
                _set_items(d, list(zip(items[0::2], items[1::2], strict=True)), fail)
                push(d)
            elif code == 0x6C:  # LIST
                items = pop_mark()
                count(len(items))
                push(list(items))
            elif code == 0x8F:  # EMPTY_SET
                push(SetLike([], frozen=False))
            elif code == 0x90:  # ADDITEMS
                items = pop_mark()
                count(len(items))
                target = pop()
                if isinstance(target, SetLike):
                    target.items.extend(items)
                elif isinstance(target, Call):
                    target.list_items.extend(items)
                # Anything else: CPython calls its `add` attribute, which may exist; the walk goes on.
                push(target)
            elif code == 0x91:  # FROZENSET
                items = pop_mark()
                count(len(items))
                push(SetLike(list(items), frozen=True))
            elif code in (0x97, 0x98):  # NEXT_BUFFER, READONLY_BUFFER
                raise fail("out-of-band buffers are not supported in model files", "pickle-protocol")
            else:
                raise fail(f"unknown opcode 0x{code:02x}", "pickle-opcode")
    except MalformedFileError as exc:
        if events:
            return WalkResult(None, events, r.pos, protocol, error=str(exc), rule=exc.rule or "")
        raise


MAX_KEY_DEPTH = 64
MAX_KEY_NODES = 10_000


def _check_key(key: Any, fail: Any) -> None:
    """Refuse tuple keys that are deep or huge before hashing them.

    CPython hashes nested tuples recursively in C: a key a million tuples deep crashes the interpreter
    (segfault, not RecursionError), and a key built from shared sub-tuples costs 2**depth to hash.
    """
    if type(key) is not tuple:
        return
    todo: list[tuple[Any, int]] = [(key, 0)]
    nodes = 0
    while todo:
        obj, depth = todo.pop()
        nodes += 1
        if depth > MAX_KEY_DEPTH or nodes > MAX_KEY_NODES:
            raise fail("dictionary key is a tuple nested too deeply or too large to hash", "pickle-limit")
        if type(obj) is tuple:
            todo.extend((item, depth + 1) for item in obj)


def _set_items(target: Any, pairs: list[tuple[Any, Any]], fail: Any) -> None:
    if isinstance(target, dict):
        for k, v in pairs:
            _check_key(k, fail)
            try:
                target[k] = v
            except TypeError:
                raise fail("dictionary key is not hashable") from None
    elif isinstance(target, Call):
        target.dict_items.extend(pairs)
    # Anything else: CPython calls its __setitem__ (a list takes an int key), so the walk goes on as it would.


def _append(target: Any, items: list[Any], fail: Any) -> None:
    if isinstance(target, list):
        target.extend(items)
    elif isinstance(target, Call):
        target.list_items.extend(items)
    # Anything else: CPython calls its `extend` or `append` attribute, which a global may have; the walk goes on.
