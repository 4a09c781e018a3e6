"""Remote models: the byte sources and folders that let the readers work on a hub, an HTTP server or an object
store without downloading weights.

- `source.py`: `RangeSource`s that fetch only the byte ranges a reader asks for (`HttpRangeSource` over HTTP
  range requests, `FsspecSource` over fsspec), with a header cache (`cache.py`);
- `dirs.py`: `HubDir`, `HttpDir`, `FsspecDir`, the `ModelDir`s the folder plan of `loaders/folder.py` reads,
  and `open_target(url)`, which says what a URL names;
- `http.py`, `hub.py`: the HTTP client (retries, token scoping, statistics) and the hub's listing API.

Paths and URLs are turned into these by `api/` only.
"""
