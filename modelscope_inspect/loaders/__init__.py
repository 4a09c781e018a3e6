"""Readers: everything that turns bytes into an inventory (and, for `mi scan`, into findings).

`base.py` holds the `Loader` protocol and registry; one module per format (`numpy_arrays.py` for `.npy`/`.npz`);
`folder.py` the one folder plan over `ModelDir`s (local here, remote in `remote/`), with what a folder can be
besides a model: a diffusers pipeline (`pipeline.py`), a PEFT adapter (`adapter.py`), and the tokenizer beside
the weights (`tokenizer.py`); `names.py` the plain-name and small-JSON rules they share; `pickle_walk.py` the
bounded pickle decoder and `safety.py` its allowlist; `scanner.py` the pickle scanner; `source.py` byte sources;
`packing.py` low-bit packing rules; `tensor_data.py` where tensor bytes are, for the commands that read data.
"""

from .base import FileScan, Loader, detect, loaders, register

__all__ = ["FileScan", "Loader", "detect", "loaders", "register"]
