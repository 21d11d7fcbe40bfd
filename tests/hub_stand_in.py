"""A local stand-in for the Hugging Face hub, for tests of model downloads.

The real hub cannot be reached from the machines the tests run on, so this mocks only the remote
side: a threaded http.server answering just the requests huggingface_hub's `snapshot_download`
makes (model info at a revision, the recursive file tree, HEAD and GET of `resolve/` with the
X-Repo-Commit / ETag / Content-Length headers it needs), serving files from local folders.
Everything on our side (child process, progress, cache folder) runs for real against it; tests
reach it through HF_ENDPOINT. `slow_bytes_per_s` throttles file bodies so a download can be
cancelled half-way.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"
CHUNK = 16 << 10


class HubStandIn:
    """Serves `repos` ({"owner/name": folder}) on 127.0.0.1 until `close()`."""

    def __init__(self, repos: dict[str, Path], slow_bytes_per_s: int | None = None):
        self.repos = {repo_id: Path(folder) for repo_id, folder in repos.items()}
        self.slow_bytes_per_s = slow_bytes_per_s
        self.requests: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def files(self, repo_id: str) -> dict[str, Path]:
        folder = self.repos[repo_id]
        return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*"))
                if p.is_file()}


def _handler(hub: HubStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
            self.answer(head=True)

        def do_GET(self) -> None:  # noqa: N802
            self.answer(head=False)

        def answer(self, head: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            hub.requests.append(f"{self.command} {path}")
            parts = path.strip("/").split("/")
            if parts[:2] == ["api", "models"] and len(parts) >= 6:
                return self.api(f"{parts[2]}/{parts[3]}", parts[4])
            if len(parts) >= 5 and parts[2] == "resolve":
                return self.resolve(f"{parts[0]}/{parts[1]}", "/".join(parts[4:]), head)
            if path == "/":
                return self.send_body(200, b"stand-in hub", "text/plain", head)
            self.not_found("EntryNotFound")

        def api(self, repo_id: str, what: str) -> None:
            if repo_id not in hub.repos:
                return self.not_found("RepoNotFound")
            files = hub.files(repo_id)
            if what == "revision":
                body: Any = {"id": repo_id, "modelId": repo_id, "sha": COMMIT, "private": False,
                             "siblings": [{"rfilename": name} for name in files]}
            else:  # tree
                body = [{"type": "file", "path": name, "size": p.stat().st_size,
                         "oid": _sha1(p)} for name, p in files.items()]
            self.send_body(200, json.dumps(body).encode(), "application/json", False)

        def resolve(self, repo_id: str, name: str, head: bool) -> None:
            if repo_id not in hub.repos:
                return self.not_found("RepoNotFound")
            file = hub.files(repo_id).get(name)
            if file is None:
                return self.not_found("EntryNotFound")
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(file.stat().st_size))
            self.send_header("ETag", f'"{_sha1(file)}"')
            self.send_header("X-Repo-Commit", COMMIT)
            self.end_headers()
            if not head:
                self.stream(file)

        def stream(self, file: Path) -> None:
            with file.open("rb") as f:
                while chunk := f.read(CHUNK):
                    self.wfile.write(chunk)
                    if hub.slow_bytes_per_s:
                        time.sleep(len(chunk) / hub.slow_bytes_per_s)

        def not_found(self, code: str) -> None:
            self.send_response(404)
            self.send_header("X-Error-Code", code)
            self.send_header("Content-Type", "application/json")
            body = json.dumps({"error": f"{code}: {self.path}"}).encode()
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def send_body(self, status: int, body: bytes, kind: str, head: bool) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

    return Handler


def _sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()
