"""Hub-style repositories: `hf://ORG/NAME[@REVISION][/PATH]` on huggingface.co or any endpoint that speaks its API.

The same two calls huggingface_hub makes (`HfApi.model_info`, `hf_hub_url`):
- `GET {endpoint}/api/models/{ORG}/{NAME}/revision/{REVISION}` → `{"sha": commit, "siblings": [{"rfilename"}]}`
  (the revision URL-quoted as a whole, so `refs/pr/1` works);
- files at `{endpoint}/{ORG}/{NAME}/resolve/{commit}/{path}`, pinned to the commit the listing named so every
  shard comes from the same revision even if the branch moves meanwhile.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from ..errors import MalformedFileError, NotFoundError, RemoteError, UsageError
from .cache import CacheEntry, HeaderCache
from .http import HttpClient, display_url

_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")
MAX_LISTING = 64 << 20


@dataclass(frozen=True, slots=True)
class HubRef:
    """A parsed `hf://` URL."""

    repo: str
    revision: str
    path: str


def parse_hf_url(url: str) -> HubRef:
    """`hf://ORG/NAME[@REVISION][/PATH]` → HubRef; `@refs/pr/N` and URL-quoted revisions are accepted."""
    rest = url[len("hf://") :]
    if rest.startswith("models/"):
        rest = rest[len("models/") :]
    if rest.startswith(("datasets/", "spaces/")):
        raise UsageError("only model repositories can be inspected", path=url, rule="hf-url")
    parts = rest.split("/")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise UsageError("expected hf://ORG/NAME[@REVISION][/PATH]", path=url, rule="hf-url")
    org, name = parts[0], parts[1]
    revision = "main"
    tail = parts[2:]
    if "@" in name:
        name, revision = name.split("@", 1)
        if revision == "refs" and len(tail) >= 2 and tail[0] == "pr":
            revision, tail = f"refs/pr/{tail[1]}", tail[2:]
        revision = unquote(revision)
    if not _PART.match(org) or not _PART.match(name) or ".." in org or ".." in name:
        raise UsageError(f"{org}/{name} is not a valid repository id", path=url, rule="hf-url")
    if not revision or any(c in revision for c in "\0\r\n"):
        raise UsageError("empty or invalid revision", path=url, rule="hf-url")
    sub = "/".join(p for p in tail if p)
    if any(p in ("..", ".") for p in tail) or "\\" in sub:
        raise UsageError("path inside the repository must not contain '..'", path=url, rule="hf-url")
    return HubRef(f"{org}/{name}", revision, sub)


def resolve_url(endpoint: str, repo: str, revision: str, filename: str) -> str:
    """The download URL of one file (huggingface_hub's `hf_hub_url`)."""
    return f"{endpoint}/{repo}/resolve/{quote(revision, safe='')}/{quote(filename)}"


def get_json(client: HttpClient, cache: HeaderCache | None, url: str, what: str) -> Any:
    """GET a JSON document, revalidated from the cache with `If-None-Match` when the server gave an ETag."""
    entry = cache.get(url, "doc") if cache else None
    headers = {"Accept": "application/json"}
    if entry and entry.body is not None:
        headers["If-None-Match"] = entry.etag
    resp = client.get(url, headers, what)
    if resp.status == 304 and entry is not None and entry.body is not None:
        resp.finish()
        client.stats.add(revalidated=1)
        body = entry.body
    elif resp.status == 200:
        length = resp.header("Content-Length")
        if length is not None and length.isdigit() and int(length) > MAX_LISTING:
            resp.finish()
            raise RemoteError(f"{what}: {int(length):,} bytes is too large", path=display_url(url), rule="hub-api")
        body = resp.read(MAX_LISTING + 1, what)
        resp.finish()
        if len(body) > MAX_LISTING:
            raise RemoteError(f"{what}: answer is too large", path=display_url(url), rule="hub-api")
        etag = resp.header("ETag")
        if cache is not None and etag:
            cache.put(CacheEntry(url, etag, len(body), body=body), "doc")
    else:
        raise client.fail(resp, what, url)
    try:

        def no_constants(name: str) -> None:
            raise ValueError(f"non-standard number {name}")

        return json.loads(body.decode("utf-8"), parse_constant=no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedFileError(f"{what}: not valid JSON ({exc})", path=display_url(url), rule="hub-api") from None


def list_repo(client: HttpClient, cache: HeaderCache | None, ref: HubRef) -> tuple[str, list[str]]:
    """The commit the revision points at and every file path in the repository."""
    endpoint = client.settings.endpoint
    url = f"{endpoint}/api/models/{ref.repo}/revision/{quote(ref.revision, safe='')}"
    doc = get_json(client, cache, url, f"listing {ref.repo}@{ref.revision}")
    siblings = doc.get("siblings") if isinstance(doc, dict) else None
    if not isinstance(siblings, list):
        raise MalformedFileError("hub answer has no 'siblings' list", path=display_url(url), rule="hub-api")
    files = [s["rfilename"] for s in siblings if isinstance(s, dict) and isinstance(s.get("rfilename"), str)]
    sha = doc.get("sha")
    commit = sha if isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{40}", sha) else ref.revision
    return commit, files


# ---- ModelScope ---------------------------------------------------------------------------------------------
# The two calls of the `modelscope` SDK (modelscope/hub/api.py: `HubApi.get_model_files`, `get_file_download_url`):
# - `GET {endpoint}/api/v1/models/{ORG}/{NAME}/repo/files?Revision={REV}&Recursive=True` →
#   `{"Code": 200, "Success": true, "Data": {"Files": [{"Path", "Type": "blob"|"tree", "Size", "Revision"}]}}`
#   (each file's `Revision` is the commit that last changed it);
# - a file at `{endpoint}/api/v1/models/{ORG}/{NAME}/repo?Revision={REV}&FilePath={PATH}`.
MS_DEFAULT_REVISION = "master"  # ModelScope's default branch


def parse_ms_url(url: str) -> HubRef:
    """`ms://ORG/NAME[@REVISION][/PATH]` → HubRef (revision `master` when none is given)."""
    if not url.startswith("ms://"):
        raise UsageError("expected ms://ORG/NAME[@REVISION][/PATH]", path=url, rule="ms-url")
    try:
        ref = parse_hf_url("hf://" + url[len("ms://") :])
    except UsageError as exc:
        raise UsageError(exc.message.replace("hf://", "ms://"), path=url, rule="ms-url") from None
    explicit = "@" in url.split("://", 1)[1].split("/", 2)[1] if url.count("/") >= 3 else False
    return ref if explicit else HubRef(ref.repo, MS_DEFAULT_REVISION, ref.path)


def ms_file_url(endpoint: str, repo: str, revision: str, filename: str) -> str:
    """The download URL of one file of a ModelScope repository."""
    return f"{endpoint}/api/v1/models/{repo}/repo?Revision={quote(revision, safe='')}&FilePath={quote(filename)}"


def ms_list_repo(client: HttpClient, cache: HeaderCache | None, ref: HubRef) -> dict[str, str]:
    """Every file of a ModelScope repository at `ref.revision`, with the revision to read it at (the commit
    that last changed it when the listing gives one, else the revision asked for)."""
    endpoint = client.settings.endpoint
    url = f"{endpoint}/api/v1/models/{ref.repo}/repo/files?Revision={quote(ref.revision, safe='')}&Recursive=True"
    doc = get_json(client, cache, url, f"listing {ref.repo}@{ref.revision}")
    shown = display_url(url)
    if not isinstance(doc, dict):
        raise MalformedFileError("ModelScope answer is not a JSON object", path=shown, rule="hub-api")
    if doc.get("Success") is False or doc.get("Code") not in (None, 200):
        raw = doc.get("Message")
        message = raw[:200] if isinstance(raw, str) else "no message"
        raise NotFoundError(f"ModelScope says: {message}", path=shown, rule="http-404")
    data = doc.get("Data")
    files = data.get("Files") if isinstance(data, dict) else None
    if not isinstance(files, list):
        raise MalformedFileError("ModelScope answer has no Data.Files list", path=shown, rule="hub-api")
    out: dict[str, str] = {}
    for f in files:
        if not isinstance(f, dict) or f.get("Type") == "tree" or not isinstance(f.get("Path"), str):
            continue
        rev = f.get("Revision")
        out[f["Path"]] = rev if isinstance(rev, str) and re.fullmatch(r"[0-9a-f]{40}", rev) else ref.revision
    return out
