"""`python -m modelscope_inspect` is the same as `mi`."""

from .cli import main

main()
