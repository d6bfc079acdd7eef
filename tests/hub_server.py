"""A small stand-in for the Hugging Face Hub on 127.0.0.1, for tests that must not use the internet.

It answers the requests `huggingface_hub.snapshot_download` makes (HF_ENDPOINT pointed here):
  GET  /api/models/{repo}/revision/{rev}        repo info: commit sha and file list
  GET  /api/models/{repo}/tree/{rev}            the files with sizes and hashes
  HEAD /{repo}/resolve/{rev}/{path}             file metadata (X-Repo-Commit, ETag, Content-Length)
  GET  /{repo}/resolve/{rev}/{path}             the bytes, honouring "Range: bytes=N-"
with the Hub's error headers (X-Error-Code: RepoNotFound / RevisionNotFound / EntryNotFound).
`cut[path] = n` makes the next n downloads of `path` stop halfway through (the connection closes
after half the promised bytes), as a dropped connection would.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


@dataclass
class Repo:
    files: dict[str, bytes]
    sha: str = "0123456789abcdef0123456789abcdef01234567"
    tags: tuple[str, ...] = ("main",)

    @classmethod
    def from_dir(cls, directory: str, **kwargs) -> "Repo":
        files = {}
        for root, _, names in os.walk(directory):
            for name in names:
                full = os.path.join(root, name)
                with open(full, "rb") as f:
                    files[os.path.relpath(full, directory).replace(os.sep, "/")] = f.read()
        return cls(files, **kwargs)


def _is_lfs(path: str) -> bool:
    return path.endswith((".safetensors", ".bin", ".onnx", ".h5"))


def _git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class HubServer:
    repos: dict[str, Repo] = field(default_factory=dict)
    cut: dict[str, int] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path) of every request

    def start(self) -> "HubServer":
        handler = type("Handler", (_Handler,), {"hub": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def downloads(self, path: str) -> int:
        """GET requests for files whose repo path ends with `path`."""
        return sum(1 for m, p in self.requests if m == "GET" and "/resolve/" in p and p.endswith("/" + path))


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet test output
        pass

    def do_HEAD(self):
        self._route(body=False)

    def do_GET(self):
        self._route(body=True)

    def _route(self, body: bool):
        path = unquote(urlsplit(self.path).path)
        self.hub.requests.append((self.command, path))
        api = re.fullmatch(r"/api/models/(.+?)/(revision|tree)/([^/]+)", path)
        if api:
            return self._api(api.group(1), api.group(2), api.group(3))
        resolve = re.fullmatch(r"/(.+?)/resolve/([^/]+)/(.+)", path)
        if resolve:
            return self._file(resolve.group(1), resolve.group(2), resolve.group(3), body)
        self._error(404, "RepoNotFound", "not found")

    def _repo(self, repo_id: str, revision: str) -> Repo | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", f"Repository Not Found for url: {self.path}")
        elif revision not in repo.tags and revision != repo.sha:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return None
        return repo

    def _api(self, repo_id: str, kind: str, revision: str):
        repo = self._repo(repo_id, revision)
        if repo is None:
            return
        if kind == "revision":
            data = {"id": repo_id, "modelId": repo_id, "sha": repo.sha, "private": False,
                    "siblings": [{"rfilename": p} for p in sorted(repo.files)]}
        else:
            data = []
            for p, content in sorted(repo.files.items()):
                entry = {"type": "file", "path": p, "size": len(content), "oid": _git_sha1(content)}
                if _is_lfs(p):
                    entry["lfs"] = {"oid": hashlib.sha256(content).hexdigest(), "size": len(content),
                                    "pointerSize": 134}
                data.append(entry)
        self._send(200, json.dumps(data).encode(), {"Content-Type": "application/json"})

    def _file(self, repo_id: str, revision: str, name: str, body: bool):
        repo = self._repo(repo_id, revision)
        if repo is None:
            return
        if name not in repo.files:
            self._error(404, "EntryNotFound", f"Entry not found: {name}")
            return
        content = repo.files[name]
        etag = hashlib.sha256(content).hexdigest() if _is_lfs(name) else _git_sha1(content)
        headers = {"X-Repo-Commit": repo.sha, "ETag": f'"{etag}"', "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if body and match:
            start = int(match.group(1))
            headers["Content-Range"] = f"bytes {start}-{len(content) - 1}/{len(content)}"
        part = content[start:]
        if not body:
            self._send(200, b"", {**headers, "Content-Length": str(len(content))}, head=True)
            return
        if self.hub.cut.get(name, 0) > 0:
            self.hub.cut[name] -= 1
            self.send_response(206 if start else 200)
            for k, v in {**headers, "Content-Length": str(len(part))}.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(part[: len(part) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self._send(206 if start else 200, part, headers)

    def _error(self, status: int, code: str, message: str):
        self._send(status, json.dumps({"error": message}).encode(),
                   {"Content-Type": "application/json", "X-Error-Code": code, "X-Error-Message": message})

    def _send(self, status: int, data: bytes, headers: dict, head: bool = False):
        self.send_response(status)
        headers = {"Content-Length": str(len(data)), **headers} if not head else headers
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(data)
