"""A fake Hugging Face Hub on loopback: what huggingface_hub's snapshot_download and
hf_hub_download ask of it (read from huggingface_hub 0.35.3, the version the GPU image and
the dev extra pin; 0.24 and 2.x were run against it too), and nothing more:

- ``GET  /api/models/{org}/{name}[/revision/{rev}]`` the repo's info: ``sha`` and ``siblings``
  (snapshot_download lists the files to fetch from it);
- ``GET  /api/models/{org}/{name}/tree/{rev}?recursive=true`` the file listing that
  huggingface_hub 1.x and later read instead of ``siblings`` (one page, no ``Link``);
- ``HEAD /{org}/{name}/resolve/{rev}/{path}`` a file's metadata, from headers: ``X-Repo-Commit``,
  ``ETag`` and ``Content-Length``, or for an LFS file a 302 to the blob host with
  ``X-Linked-Etag`` and ``X-Linked-Size``;
- ``GET  /{org}/{name}/resolve/{rev}/{path}`` the file (LFS: the same 302);
- ``GET  /_lfs/{sha256}`` on ``localhost`` instead of ``127.0.0.1``: the blob, as a CDN on
  another host serves it (so the client drops the Authorization header, as it does for the Hub's).

``rev`` is ``main`` or the repo's commit. Errors carry the Hub's ``X-Error-Code`` headers
(``RepoNotFound``, ``GatedRepo``, ``EntryNotFound``, ``RevisionNotFound``), which the
client turns into its typed errors. A repo the fake does not hold answers 401 without a
token and 404 with one, as the Hub does; a repo can be forced to answer 401 or 404, or be
gated (its info is public, its files need a token that was granted access). A token the
fake does not know is refused with the Hub's "Invalid credentials" 401.

Every request is recorded (method, host, path, headers)::

    with FakeHub() as hub:
        hub.add(FakeRepo("org/name", {"config.json": b"{}"}))
        env = {"HF_ENDPOINT": hub.url, ...}; hub.requests
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

#: Files the Hub keeps in LFS by default (.gitattributes of a new model repo, abridged).
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".onnx", ".msgpack")


@dataclass
class FakeRepo:
    repo_id: str
    files: Mapping[str, bytes]
    lfs: frozenset[str] | None = None
    """Paths served through LFS (a redirect to the blob host); default: by suffix, as the Hub does."""
    gated: bool = False
    granted: set[str] = field(default_factory=set)
    """Tokens allowed into a gated repo."""
    deny: int | None = None
    """401 or 404: every request for this repo gets that answer (RepoNotFound)."""

    def __post_init__(self) -> None:
        if self.lfs is None:
            self.lfs = frozenset(p for p in self.files if p.endswith(LFS_SUFFIXES))
        tree = hashlib.sha1()
        for path in sorted(self.files):
            tree.update(path.encode() + b"\0" + git_blob_sha(self.files[path]).encode())
        self.sha = tree.hexdigest()

    def is_lfs(self, path: str) -> bool:
        return path in (self.lfs or ())


def git_blob_sha(data: bytes) -> str:
    """The git object id of a file: what the Hub sends as the ETag of a file kept in git."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class Request:
    method: str
    host: str
    path: str
    headers: Mapping[str, str]
    """Lower-cased names."""
    status: int

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


class FakeHub:
    BLOB_HOST = "localhost"

    def __init__(self, repos: Iterable[FakeRepo] = (), tokens: Iterable[str] = ()) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.tokens = set(tokens)
        """Tokens the fake knows (any other is refused with 401)."""
        self.requests: list[Request] = []
        self._blobs: dict[str, bytes] = {}
        self._lock = threading.Lock()
        for repo in repos:
            self.add(repo)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-hf-hub", daemon=True)

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The endpoint (HF_ENDPOINT)."""
        return f"http://127.0.0.1:{self.port}"

    # -- steering and reading ----------------------------------------------------------------
    def add(self, repo: FakeRepo) -> FakeRepo:
        with self._lock:
            self.repos[repo.repo_id] = repo
            for path, data in repo.files.items():
                if repo.is_lfs(path):
                    self._blobs[hashlib.sha256(data).hexdigest()] = data
        return repo

    def requests_for(self, repo_id: str) -> list[Request]:
        """The API and resolve requests naming ``repo_id`` (blob downloads name no repo)."""
        with self._lock:
            return [r for r in self.requests if _repo_of(r.path) == repo_id]

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    # -- answers -------------------------------------------------------------------------------
    def answer(self, method: str, path: str, headers: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
        parts = [unquote(p) for p in urlsplit(path).path.strip("/").split("/")]
        if parts[:1] == ["_lfs"] and len(parts) == 2 and method in ("GET", "HEAD"):  # the CDN: no auth
            blob = self._blobs.get(parts[1])
            if blob is None:
                return 404, {"Content-Length": "0"}, b""
            return 200, {"Content-Length": str(len(blob)), "ETag": f'"{parts[1]}"',
                         "Content-Type": "application/octet-stream"}, blob
        auth = headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None
        if token is not None and token not in self.tokens:
            return _error(401, None, "Invalid credentials in Authorization header")
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "tree" and method == "GET":
            return self._tree(f"{parts[2]}/{parts[3]}", parts[5], "/".join(parts[6:]), token)
        if parts[:2] == ["api", "models"] and len(parts) in (4, 6) and method == "GET":
            if len(parts) == 6 and parts[4] != "revision":
                return _error(404, None, "Not Found")
            return self._info(f"{parts[2]}/{parts[3]}", parts[5] if len(parts) == 6 else "main", token)
        if len(parts) >= 5 and parts[2] == "resolve" and method in ("GET", "HEAD"):
            return self._resolve(f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]), token)
        return _error(404, None, "Not Found")

    def _repo(self, repo_id: str, token: str | None) -> FakeRepo | tuple[int, dict[str, str], bytes]:
        repo = self.repos.get(repo_id)
        if repo is None:  # the Hub does not tell a missing repo from a private one without a token
            return _error(401 if token is None else 404, "RepoNotFound", "Repository not found")
        if repo.deny is not None:
            return _error(repo.deny, "RepoNotFound", "Repository not found")
        return repo

    def _info(self, repo_id: str, revision: str, token: str | None) -> tuple[int, dict[str, str], bytes]:
        repo = self._repo(repo_id, token)
        if not isinstance(repo, FakeRepo):
            return repo
        if revision not in ("main", repo.sha):
            return _error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        body = {
            "_id": repo.sha[:24],
            "id": repo_id,
            "modelId": repo_id,
            "author": repo_id.split("/")[0],
            "sha": repo.sha,
            "lastModified": "2025-08-25T00:00:00.000Z",
            "private": False,
            "gated": "manual" if repo.gated else False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "library_name": "transformers",
            "siblings": [{"rfilename": p} for p in sorted(repo.files)],
            "createdAt": "2025-08-25T00:00:00.000Z",
        }
        data = json.dumps(body).encode()
        return 200, {"Content-Type": "application/json", "Content-Length": str(len(data))}, data

    def _tree(self, repo_id: str, revision: str, under: str, token: str | None) -> tuple[int, dict[str, str], bytes]:
        """The recursive listing (one page) that huggingface_hub 1.x and later read instead of siblings."""
        repo = self._repo(repo_id, token)
        if not isinstance(repo, FakeRepo):
            return repo
        if revision not in ("main", repo.sha):
            return _error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        prefix = f"{under}/" if under else ""
        entries: list[dict[str, object]] = []
        folders = sorted({str(PurePosixPath(p).parent) for p in repo.files if p.startswith(prefix)} - {"."})
        entries += [{"type": "directory", "oid": hashlib.sha1(f.encode()).hexdigest(), "size": 0, "path": f}
                    for f in folders]
        for path in sorted(p for p in repo.files if p.startswith(prefix)):
            data = repo.files[path]
            entry: dict[str, object] = {"type": "file", "size": len(data), "path": path}
            if repo.is_lfs(path):
                pointer = _lfs_pointer(data)
                entry.update(oid=git_blob_sha(pointer),
                             lfs={"oid": hashlib.sha256(data).hexdigest(), "size": len(data),
                                  "pointerSize": len(pointer)})
            else:
                entry["oid"] = git_blob_sha(data)
            entries.append(entry)
        body = json.dumps(entries).encode()
        return 200, {"Content-Type": "application/json", "Content-Length": str(len(body))}, body

    def _resolve(self, repo_id: str, revision: str, path: str, token: str | None) -> tuple[int, dict[str, str], bytes]:
        repo = self._repo(repo_id, token)
        if not isinstance(repo, FakeRepo):
            return repo
        if repo.gated and token not in repo.granted:
            if token is None:
                return _error(401, "GatedRepo", f"Access to model {repo_id} is restricted. You must have access "
                              "to it and be authenticated to access it. Please log in.")
            return _error(403, "GatedRepo", f"Access to model {repo_id} is restricted and you are not in the "
                          "authorized list. Visit the repo page to ask for access.")
        if revision not in ("main", repo.sha):
            return _error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        if path not in repo.files:
            status, headers, body = _error(404, "EntryNotFound", f"{path} does not exist on \"{revision}\"")
            return status, {**headers, "X-Repo-Commit": repo.sha}, body
        data = repo.files[path]
        common = {"X-Repo-Commit": repo.sha, "Accept-Ranges": "bytes"}
        if repo.is_lfs(path):
            sha256 = hashlib.sha256(data).hexdigest()
            return 302, {
                **common,
                "Location": f"http://{self.BLOB_HOST}:{self.port}/_lfs/{sha256}",
                "ETag": f'"{git_blob_sha(_lfs_pointer(data))}"',
                "X-Linked-Etag": f'"{sha256}"',
                "X-Linked-Size": str(len(data)),
                "Content-Length": "0",
            }, b""
        return 200, {**common, "ETag": f'"{git_blob_sha(data)}"', "Content-Length": str(len(data)),
                     "Content-Type": "application/octet-stream"}, data


def _lfs_pointer(data: bytes) -> bytes:
    """The git-lfs pointer file git holds in place of an LFS file."""
    sha256 = hashlib.sha256(data).hexdigest()
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {len(data)}\n".encode()


def _error(status: int, code: str | None, message: str) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"error": message}).encode()
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body)), "X-Error-Message": message}
    if code:
        headers["X-Error-Code"] = code
    return status, headers, body


def _repo_of(path: str) -> str | None:
    parts = urlsplit(path).path.strip("/").split("/")
    if parts[:2] == ["api", "models"] and len(parts) >= 4:
        return f"{parts[2]}/{parts[3]}"
    if len(parts) >= 5 and parts[2] == "resolve":
        return f"{parts[0]}/{parts[1]}"
    return None


def _handler_for(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet test output
            return

        def _serve(self, method: str) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, out, body = hub.answer(method, self.path, headers)
            host = headers.get("host", "").rsplit(":", 1)[0]
            hub._record(Request(method, host, self.path, headers, status))
            self.send_response(status)
            for name, value in out.items():
                self.send_header(name, value)
            self.end_headers()
            if method != "HEAD" and body:
                self.wfile.write(body)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_HEAD(self) -> None:
            self._serve("HEAD")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self._serve("POST")

    return Handler
