"""The README's examples are real output: every `<!-- example -->` block is re-run and compared."""

from __future__ import annotations

import os

import pytest

from tests.readme_examples import examples, rewrite, run

if os.environ.get("MI_UPDATE_README") == "1":
    rewrite()

EXAMPLES = examples()


def _norm(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").split("\n"))


def test_readme_has_examples() -> None:
    assert {"inspect", "inspect-tied"} <= {e.name for e in EXAMPLES}


@pytest.mark.parametrize("ex", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_readme_example_is_true(ex) -> None:  # type: ignore[no-untyped-def]
    code, out = run(ex.args)
    assert code in (0, 1), out
    assert _norm(out) == _norm(ex.output)


def test_every_command_is_documented() -> None:
    from typer.main import get_command

    from modelscope_inspect.cli import app
    from tests.readme_examples import README

    text = README.read_text(encoding="utf-8")
    group = get_command(app)
    for name, cmd in group.commands.items():  # type: ignore[attr-defined]
        assert f"mi {name}" in text, f"README does not mention `mi {name}`"
        assert cmd.help, f"`mi {name}` has no help text"


def test_python_example_runs() -> None:
    import re

    from tests.readme_examples import README, ROOT

    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- python-example -->\n```python\n(.*?)```", text, re.S)
    assert blocks, "README has no python example"
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        for code in blocks:
            exec(compile(code, "README.md", "exec"), {})
    finally:
        os.chdir(cwd)


def test_readme_says_which_python() -> None:
    import tomllib

    from tests.readme_examples import README, ROOT

    needed = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["requires-python"]
    version = needed.removeprefix(">=")
    assert f"Python ≥ {version}" in README.read_text(encoding="utf-8")
