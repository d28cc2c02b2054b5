"""A hostile HTTP server on 127.0.0.1 for client tests: real sockets, scripted answers.

``HostileServer(routes)``: ``routes`` maps "METHOD /path" to a function ``(handler, body) -> None``
that writes the answer itself (so it can redirect, trickle, lie about sizes or stream 300 MB).
Every request is recorded in ``server.seen`` as (method, path, headers, body)."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class HostileServer:
    def __init__(self, routes: dict):
        self.routes, self.seen = routes, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                path = self.path.split("?")[0]
                outer.seen.append((self.command, self.path, dict(self.headers), body))
                fn = outer.routes.get(f"{self.command} {path}")
                if fn is None:
                    return answer(self, 404, {"Errors": [{"ErrorCode": "NOT_FOUND"}]})
                try:
                    fn(self, body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_DELETE = do_PUT = _any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "HostileServer":
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def answer(h: BaseHTTPRequestHandler, status: int, body, headers: dict | None = None) -> None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    h.send_response(status)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(data)))
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.end_headers()
    h.wfile.write(data)


def redirect(location: str, status: int = 307):
    def fn(h, body):
        answer(h, status, b"", {"Location": location})
    return fn


def trickle(every: float, total_bytes: int = 10_000, headers_too: bool = False):
    """Headers at once (or one byte at a time too), then one body byte every ``every`` seconds."""
    def fn(h, body):
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {total_bytes}\r\n"
                f"X-Padding: {'x' * 40}\r\n\r\n").encode()
        try:
            if headers_too:
                for i in range(len(head)):
                    h.wfile.write(head[i:i + 1])
                    h.wfile.flush()
                    time.sleep(every)
            else:
                h.wfile.write(head)
            for _ in range(total_bytes):
                h.wfile.write(b" ")
                h.wfile.flush()
                time.sleep(every)
        except OSError:
            return
    return fn


def huge(total: int, declare: bool = False, chunk: int = 1 << 20):
    """A JSON-looking body of ``total`` bytes, generated as it is sent; ``declare``: with a
    Content-Length (else close-delimited). Counts what it managed to send in ``fn.sent``."""
    def fn(h, body):
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        if declare:
            h.send_header("Content-Length", str(total))
        else:
            h.send_header("Connection", "close")
        h.end_headers()
        block = b"[" + b"0," * (chunk // 2 - 1) + b"0"
        sent = 0
        try:
            while sent < total:
                h.wfile.write(block[:min(chunk, total - sent)])
                sent += min(chunk, total - sent)
                fn.sent = sent
        except OSError:
            pass
        h.close_connection = True
    fn.sent = 0
    return fn
