"""Readers: everything that turns bytes into an inventory (and, for `mi scan`, into findings).

`base.py` holds the `Loader` protocol and registry; one module per format; `folder.py` the one folder plan over
`ModelDir`s (local here, remote in `remote/`); `pickle_walk.py` the bounded pickle decoder and `safety.py` its
allowlist; `scanner.py` the pickle scanner; `source.py` byte sources; `packing.py` low-bit packing rules;
`tensor_data.py` where tensor bytes are, for the commands that read data.
"""

from .base import FileScan, Loader, detect, loaders, register

__all__ = ["FileScan", "Loader", "detect", "loaders", "register"]
