"""`mi check`: budgets for CI (file size, parameter count, dtype mix, pickle use, group shares).

A `Budget` is a set of limits; `check_inventory` measures one model against it and returns one `RuleResult`
per limit (measured, limit, pass/fail). Budgets come from command-line flags or from `pyproject.toml`:

    [tool.mi.check]                    # defaults for every checked path
    max-size = "800MB"
    allow-dtypes = ["bf16", "f16"]

    [tool.mi.check."models/*.safetensors"]   # a glob (relative to pyproject.toml): overrides for those files
    max-params = "200M"
    max-share = { embedding = 0.5 }
    allow-empty = true                       # this glob may match no file (else that is an error)

Gates fail closed: a `max-share` group that matches no tensor, or a glob that matches no file, is an error
(exit 2) unless allowed (`allow-empty-share`, `allow-empty`). A folder's `max-size` and `forbid-pickle`
count every model-type file in it, also those the folder plan did not read (`TensorInventory.unread_files`).

Flags override the file. Units: sizes in B, KB/MB/GB/TB (powers of 1000) or KiB/MiB/GiB/TiB (powers of
1024); counts as plain integers or with K/M/B/T suffixes (`1.5B`); `--expect-params 124M±1%` or `±1000`.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ..dtypes import lookup
from ..errors import MalformedFileError, UsageError
from ..inventory import TensorInventory, UnreadFile

SIZE_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
}
COUNT_UNITS = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9, "T": 10**12}
PICKLE_FORMATS = frozenset({"torch-zip", "torch-legacy", "pickle", "torchscript"})
_NUM = re.compile(r"^\s*([0-9][0-9_,]*(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$")

# Semantic groups for `--max-share` (besides module prefixes and globs). Matched on dotted name parts.
GROUP_PATTERNS: dict[str, tuple[str, ...]] = {
    "embedding": ("embed", "wte", "wpe", "tok_embeddings", "word_embeddings", "position_embeddings", "lm_head"),
    "attention": ("attn", "attention", "self_attn", "q_proj", "k_proj", "v_proj", "o_proj", "c_attn"),
    "mlp": ("mlp", "ffn", "feed_forward", "fc1", "fc2", "gate_proj", "up_proj", "down_proj", "c_fc"),
    "norm": ("norm", "ln_", "layernorm", "layer_norm", "ln"),
}


_SHOWN_UNITS = {id(SIZE_UNITS): "B, KB, MB, GB, TB, KiB, MiB, GiB, TiB", id(COUNT_UNITS): "K, M, B, T"}


def _number(text: str, units: dict[str, int], what: str) -> int:
    shown = _SHOWN_UNITS.get(id(units), ", ".join(u for u in units if u))
    m = _NUM.match(str(text))
    if not m:
        raise UsageError(f"{what} {text!r} is not a number with an optional unit ({shown})")
    value, unit = m.group(1).replace("_", "").replace(",", ""), m.group(2).upper()
    if unit not in units:
        raise UsageError(f"{what} {text!r}: unknown unit {m.group(2)!r} (use {shown})")
    try:
        return int(Decimal(value) * units[unit])
    except InvalidOperation:
        raise UsageError(f"{what} {text!r} is not a number") from None


def parse_size(text: str | int) -> int:
    """`'800MB'` → 800_000_000, `'1.5GiB'` → 1_610_612_736, `'42'` → 42 (bytes)."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    return _number(str(text), SIZE_UNITS, "size")


def parse_count(text: str | int) -> int:
    """`'200M'` → 200_000_000, `'1.5B'` → 1_500_000_000, `'12_000'` → 12000."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    return _number(str(text), COUNT_UNITS, "parameter count")


@dataclass(frozen=True, slots=True)
class Expect:
    """`N±tol`: the parameter count must be within `tol` of `value`."""

    value: int
    tol: int
    text: str


def parse_expect(text: str | int) -> Expect:
    """`'124M±1%'`, `'124439808+-1000'`, `'11904'` (exact)."""
    s = str(text).strip()
    parts = re.split(r"±|\+/-|\+-", s)
    if len(parts) > 2:
        raise UsageError(f"expected params {s!r}: use N±TOL, e.g. 124M±1%")
    if not parts[0].strip():
        raise UsageError(f"expected params {s!r}: the count before the tolerance is missing; use N±TOL, e.g. 124M±1%")
    value = parse_count(parts[0])
    tol = 0
    if len(parts) == 2:
        t = parts[1].strip()
        if not t:
            raise UsageError(f"expected params {s!r}: the tolerance after ± is missing; use N±TOL, e.g. 124M±1%")
        if t.endswith("%"):
            try:
                pct = Decimal(t[:-1])
            except InvalidOperation:
                raise UsageError(f"expected params {s!r}: bad percentage {t!r}") from None
            tol = int(abs(pct) * value / 100)
        else:
            tol = parse_count(t)
    return Expect(value, tol, s)


def parse_share(text: str) -> tuple[str, float]:
    """`'embedding=0.5'` or `'embedding=50%'` → ('embedding', 0.5)."""
    if "=" not in text:
        raise UsageError(f"max share {text!r}: use GROUP=FRACTION, e.g. embedding=0.5")
    group, _, frac = text.partition("=")
    return group.strip(), _fraction(frac.strip(), text)


def _fraction(frac: Any, text: str) -> float:
    try:
        f = float(str(frac).rstrip("%")) / (100 if str(frac).endswith("%") else 1)
    except ValueError:
        raise UsageError(f"max share {text!r}: {frac!r} is not a fraction") from None
    if not 0 <= f <= 1:
        raise UsageError(f"max share {text!r}: the fraction must be between 0 and 1")
    return f


@dataclass(frozen=True, slots=True)
class Budget:
    """The limits one path is checked against. None means "no such rule"."""

    max_size: int | None = None
    max_params: int | None = None
    min_params: int | None = None
    allow_dtypes: tuple[str, ...] | None = None
    forbid_pickle: bool = False
    expect_params: Expect | None = None
    max_share: tuple[tuple[str, float], ...] = ()
    allow_empty_share: bool = False  # a max-share group may match no tensor (else that is an error)
    vocab_consistent: bool = False  # the tokenizer's ids fit the embedding / lm_head rows and the config

    @property
    def empty(self) -> bool:
        """True when no rule is set (`allow_empty_share` alone checks nothing)."""
        return replace(self, allow_empty_share=False) == Budget()

    def merged(self, over: Budget) -> Budget:
        """`self` with every rule `over` sets replacing it."""
        changes: dict[str, Any] = {}
        for f in fields(Budget):
            v = getattr(over, f.name)
            if v not in (None, False, ()):
                changes[f.name] = v
        if over.max_share:
            shares = dict(self.max_share)
            shares.update(dict(over.max_share))
            changes["max_share"] = tuple(shares.items())
        return replace(self, **changes)


def dtypes_list(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Canonical dtype names from `'fp16,bf16'` or a list (unknown names are a usage error)."""
    items = value.split(",") if isinstance(value, str) else list(value)
    out = []
    for item in items:
        name = str(item).strip()
        if not name:
            continue
        try:
            out.append(lookup(name).name)
        except MalformedFileError:
            raise UsageError(f"unknown dtype {name!r} in allowed dtypes") from None
    if not out:
        raise UsageError("allowed dtypes list is empty")
    return tuple(out)


_KEYS = {
    "max-size",
    "max-params",
    "min-params",
    "allow-dtypes",
    "forbid-pickle",
    "expect-params",
    "max-share",
    "allow-empty-share",
    "vocab-consistent",
}


def budget_from_table(table: dict[str, Any], where: str) -> Budget:
    """A `Budget` from one `[tool.mi.check]` table (keys as on the command line, without `--`)."""
    unknown = [k for k, v in table.items() if k.replace("_", "-") not in _KEYS and not isinstance(v, dict)]
    where = where or "budget"
    if unknown:
        raise UsageError(f"{where}: unknown budget key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})")
    t = {k.replace("_", "-"): v for k, v in table.items() if not isinstance(v, dict) or k in ("max-share", "max_share")}
    shares: tuple[tuple[str, float], ...] = ()
    if "max-share" in t:
        ms = t["max-share"]
        if isinstance(ms, dict):
            shares = tuple((str(g), _fraction(f, f"{g}={f}")) for g, f in ms.items())
        elif isinstance(ms, list):
            shares = tuple(parse_share(str(x)) for x in ms)
        else:
            shares = (parse_share(str(ms)),)
    fp = t.get("forbid-pickle", False)
    if not isinstance(fp, bool):
        raise UsageError(f"{where}: forbid-pickle must be true or false")
    allow_empty = t.get("allow-empty-share", False)
    if not isinstance(allow_empty, bool):
        raise UsageError(f"{where}: allow-empty-share must be true or false")
    vocab = t.get("vocab-consistent", False)
    if not isinstance(vocab, bool):
        raise UsageError(f"{where}: vocab-consistent must be true or false")
    return Budget(
        vocab_consistent=vocab,
        max_size=parse_size(t["max-size"]) if "max-size" in t else None,
        max_params=parse_count(t["max-params"]) if "max-params" in t else None,
        min_params=parse_count(t["min-params"]) if "min-params" in t else None,
        allow_dtypes=dtypes_list(t["allow-dtypes"]) if "allow-dtypes" in t else None,
        forbid_pickle=fp,
        expect_params=parse_expect(t["expect-params"]) if "expect-params" in t else None,
        max_share=shares,
        allow_empty_share=allow_empty,
    )


@dataclass(frozen=True, slots=True)
class Config:
    """Budgets read from a pyproject.toml: defaults plus per-glob overrides (globs relative to `root`)."""

    path: str
    root: Path
    default: Budget
    per_glob: tuple[tuple[str, Budget], ...]
    allow_empty: tuple[str, ...] = ()  # globs whose table says `allow-empty = true`: they may match no file

    def budget_for(self, key: str, name: str | None = None) -> Budget:
        """Defaults, then every glob that matches (in file order): `key` is a path relative to `root` (or a
        URL, matched whole), `name` the file's own name, which globs may match too."""
        b = self.default
        for pattern, over in self.per_glob:
            if glob_matches(pattern, key, name):
                b = b.merged(over)
        return b


def glob_matches(pattern: str, key: str, name: str | None = None) -> bool:
    """True when a `[tool.mi.check."GLOB"]` pattern matches a path key (relative to the pyproject's folder,
    or a URL) or the file's own name."""
    return fnmatch.fnmatch(key, pattern) or (name is not None and fnmatch.fnmatch(name, pattern))


def config_from_toml(raw: bytes, display: str, root: Path) -> Config | None:
    """`[tool.mi.check]` from the bytes of a pyproject.toml, or None when it has no such table."""
    if len(raw) > 4 << 20:
        raise UsageError("pyproject.toml larger than 4 MiB", path=display)
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise UsageError(f"not valid TOML ({exc})", path=display, rule="config") from None
    table = doc.get("tool", {}).get("mi", {}).get("check")
    if table is None:
        return None
    if not isinstance(table, dict):
        raise UsageError("[tool.mi.check] is not a table", path=display, rule="config")
    try:
        default = budget_from_table(table, "[tool.mi.check]")
        per_glob = []
        allowed = []
        for key, value in table.items():
            if isinstance(value, dict) and key.replace("_", "-") != "max-share":
                where = f'[tool.mi.check."{key}"]'
                value = dict(value)
                allow = value.pop("allow-empty", value.pop("allow_empty", False))
                if not isinstance(allow, bool):
                    raise UsageError(f"{where}: allow-empty must be true or false")
                if allow:
                    allowed.append(key)
                per_glob.append((key, budget_from_table(value, where)))
    except UsageError as exc:
        raise UsageError(exc.message, path=display, rule="config") from None
    return Config(display, root, default, tuple(per_glob), tuple(allowed))


@dataclass(frozen=True, slots=True)
class RuleResult:
    """One budget rule applied to one model."""

    rule: str
    measured: Any
    limit: Any
    passed: bool
    detail: str = ""
    params: int | None = None  # max-share: the group's parameters
    refused: bool = False  # forbid-pickle: the readers refused the file for its unsafe globals


@dataclass(frozen=True, slots=True)
class PathResult:
    """All rules for one checked path; `error` set when it could not be read."""

    path: str
    rules: tuple[RuleResult, ...] = ()
    error: str | None = None
    budget_source: str = "flags"
    bytes_read: int | None = None  # body bytes fetched over the network, for URLs

    @property
    def passed(self) -> bool:
        return self.error is None and all(r.passed for r in self.rules)


@dataclass(frozen=True, slots=True)
class CheckReport:
    """`mi check`: one `PathResult` per path."""

    results: tuple[PathResult, ...] = field(default_factory=tuple)

    @property
    def unreadable(self) -> bool:
        """True when a path could not be read."""
        return any(r.error for r in self.results)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)


def _in_group(name: str, group: str) -> bool:
    parts = name.lower().split(".")
    pats = GROUP_PATTERNS.get(group.lower())
    if pats is not None:
        return any(any(part == p or part.startswith(p) for p in pats) for part in parts)
    if any(c in group for c in "*?["):
        return fnmatch.fnmatchcase(name, group)
    return name == group or name.startswith(group + ".")


def group_share(inv: TensorInventory, group: str) -> tuple[int, float]:
    """Unique params of the tensors in `group` and their share of the model's parameters.

    `group` is a semantic group (`embedding`, `attention`, `mlp`, `norm`: matched on name parts), a glob
    over tensor names (`*.wte.*`) or a module prefix (`transformer.wte`).
    """
    total = inv.total_params
    n = sum(t.counted_numel for t in inv.tensors if t.section == "model" and _in_group(t.name, group))
    return n, (n / total if total else 0.0)


def empty_group_error(inv: TensorInventory, group: str) -> UsageError | None:
    """The error for a `--max-share` group that matches no model tensor (a typo passes no gate), else None.

    A tensor that matches counts even when it adds no parameters (a tied `lm_head` holds a real 0% share).
    """
    if any(t.section == "model" and _in_group(t.name, group) for t in inv.tensors):
        return None
    allow = "; --allow-empty-share (allow-empty-share = true) allows that"
    if group.lower() in GROUP_PATTERNS or any(c in group for c in "*?["):
        kind = "glob" if group.lower() not in GROUP_PATTERNS else "group"
        return UsageError(f"max-share {kind} {group!r} matches no tensor of this model{allow}", path=inv.path,
                          rule="max-share")  # fmt: skip
    close = difflib.get_close_matches(group.lower(), list(GROUP_PATTERNS), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return UsageError(
        f"unknown max-share group {group!r}{hint}: not a group ({', '.join(GROUP_PATTERNS)}), a glob, or a "
        f"module prefix of any tensor{allow}",
        path=inv.path,
        rule="max-share",
    )


_NOT_PICKLE = (".safetensors", ".gguf", ".onnx")


def unread_pickles(inv: TensorInventory) -> list[UnreadFile]:
    """Files of a folder that were not read but are pickle-based: by their magic bytes, or, when those say
    nothing, by a name that is not a non-pickle format's (fail closed)."""
    return [
        u
        for u in inv.unread_files
        if (u.format in PICKLE_FORMATS) or (u.format is None and not u.path.lower().endswith(_NOT_PICKLE))
    ]


def _names(files: list[UnreadFile], shown: int = 3) -> str:
    names = [u.path for u in files]
    return ", ".join(names[:shown]) + (f" and {len(names) - shown:,} more" if len(names) > shown else "")


def is_pickle_format(fmt: str) -> bool:
    """True when any part of an inventory format (`a+b` for mixed folders) is pickle-based."""
    return any(part in PICKLE_FORMATS for part in fmt.split("+"))


def check_inventory(inv: TensorInventory, budget: Budget) -> tuple[RuleResult, ...]:
    """Measure `inv` against every rule of `budget`, in a fixed order."""
    out: list[RuleResult] = []
    if budget.max_size is not None:
        # Every model-type file of a folder counts, also the ones the folder plan did not read.
        size = inv.file_bytes + sum(u.nbytes for u in inv.unread_files)
        unread = list(inv.unread_files)
        detail = f"incl. not read: {_names(unread)}" if unread else ""
        out.append(RuleResult("max-size", size, budget.max_size, size <= budget.max_size, detail))
    n = inv.total_params
    if budget.max_params is not None:
        out.append(RuleResult("max-params", n, budget.max_params, n <= budget.max_params))
    if budget.min_params is not None:
        out.append(RuleResult("min-params", n, budget.min_params, n >= budget.min_params))
    if budget.expect_params is not None:
        e = budget.expect_params
        off = n - e.value
        out.append(
            RuleResult(
                "expect-params",
                n,
                {"value": e.value, "tolerance": e.tol},
                abs(off) <= e.tol,
                f"off by {off:+,}" if off else "",
            )
        )
    if budget.allow_dtypes is not None:
        present = list(inv.by_dtype)
        bad = [d for d in present if d not in budget.allow_dtypes]
        out.append(
            RuleResult(
                "allow-dtypes",
                present,
                list(budget.allow_dtypes),
                not bad,
                f"not allowed: {', '.join(bad)}" if bad else "",
            )
        )
    if budget.forbid_pickle:
        pk = is_pickle_format(inv.format)
        pickles = unread_pickles(inv)
        formats = [inv.format, *sorted({u.format or "unrecognised" for u in pickles} - {inv.format})]
        details = ["pickle-based format"] if pk else []
        if pickles:
            details.append(f"pickle, not read: {_names(pickles)}")
        out.append(
            RuleResult(
                "forbid-pickle",
                "+".join(formats),
                "no pickle",
                not pk and not pickles,
                "; ".join(details),
            )
        )
    for group, limit in budget.max_share:
        gp, share = group_share(inv, group)
        empty = empty_group_error(inv, group)
        if empty is not None and not budget.allow_empty_share:
            raise empty
        out.append(
            RuleResult(
                f"max-share {group}",
                round(share, 6),
                limit,
                share <= limit,
                "no tensor matches this group (allowed)" if empty is not None else "",
                params=gp,
            )
        )
    if budget.vocab_consistent:
        out.append(_vocab_rule(inv))
    return tuple(out)


def _vocab_rule(inv: TensorInventory) -> RuleResult:
    from .vocab import vocab_report

    rep = vocab_report(inv)
    if rep is None:
        raise UsageError(
            "--vocab-consistent needs a tokenizer beside the weights (tokenizer.json, tokenizer.model, vocab.json, "
            "vocab.txt) and none was found",
            path=inv.path,
            rule="vocab-consistent",
        )
    measured = {"tokenizer": rep.tokenizer_size, "ids_needed": rep.needed, "config": rep.config_vocab,
                "tables": {t.name: t.rows for t in rep.tables}}  # fmt: skip
    return RuleResult("vocab-consistent", measured, "ids < rows", rep.consistent, rep.detail)


__all__ = [
    "Budget",
    "CheckReport",
    "Config",
    "PathResult",
    "RuleResult",
    "check_inventory",
    "config_from_toml",
    "parse_count",
    "parse_expect",
    "parse_size",
]
