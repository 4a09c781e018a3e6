"""The `--endpoint` / `--token` options, defined once for every command that takes a model path.

A command adds `endpoint: EndpointOpt = None, token: TokenOpt = None` and passes both to
`loaders.folder.load(path, endpoint=endpoint, token=token)`. Without them the environment applies:
`MI_HF_ENDPOINT` / `HF_ENDPOINT` and `HF_TOKEN`.
"""

from __future__ import annotations

from typing import Annotated

import typer

EndpointOpt = Annotated[
    str | None,
    typer.Option(
        "--endpoint",
        metavar="URL",
        help="Hub endpoint for hf:// URLs (default $MI_HF_ENDPOINT, $HF_ENDPOINT, https://huggingface.co).",
    ),
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        metavar="TOKEN",
        help="Token for private or gated models (default $HF_TOKEN); sent only to the hub or the URL's server.",
    ),
]
