#!/usr/bin/env python3
"""dlserver.py - a real HTTP download server for the installer tests (stdlib only).

Serves the files of one directory on 127.0.0.1 (a free port unless told), with:
  - Range requests: "bytes=a-b", "bytes=a-", "bytes=-n" -> 206 + Content-Range; an
    unsatisfiable range -> 416; If-Range honoured (ETag or Last-Modified); --no-range
    makes it ignore Range (always 200, whole file).
  - throttle: at most --throttle bytes/s per response;
  - faults: --fail-first K answers the first K file requests with --fail-status (500);
    --drop-first K with --drop-after N closes the connection after N body bytes on the
    first K file requests that are served (after the failed ones);
  - content that changes upstream: with --change-after K, the requests of a path after its
    K-th get the file "<name>.v2" instead, when there is one (another ETag: ETags name the
    file's inode, size and mtime); --ignore-if-range answers ranges whatever If-Range says;
  - --no-length sends bodies without Content-Length (closing the connection at the end);
  - announce: the file's real SHA-256 in a header ("x-linked-etag": X-Linked-Etag as
    Hugging Face sends it, "etag": as the ETag itself, "repr-digest": RFC 9530,
    "digest": RFC 3230), so a stale catalogue checksum can be told from a damaged download;
  - chunk_log: every body chunk sent is logged with its time (GET /_chunks:
    [[monotonic seconds, bytes, path], ...], cleared by POST /_stats/reset); sndbuf sets
    SO_SNDBUF of each connection (bytes; 0: the system's), so what the log shows as sent is
    close to what the client took;
  - corrupt_from: with N > 0, every body byte at a file offset >= N is sent inverted (the
    ETag stays), so the ranges of a segmented download past N bring other bytes;
  - 404 (JSON) for unknown files; only GET and HEAD (405 otherwise).
  - GET /_stats: JSON counters {requests, file_requests, bytes_served, ranges, if_ranges,
    statuses, paths: {path: {requests, bytes}}, inflight, max_inflight, settings} (ranges
    and if_ranges: the Range and If-Range headers of the file requests, in order; statuses:
    of the file requests, not of /_stats and /_control; inflight: file bodies being sent
    now, max_inflight: the most at once); POST /_stats/reset clears them (but inflight).
  - GET /_control: the settings; POST /_control with a JSON object changes them
    (throttle, fail_first, fail_status, drop_first, drop_after, no_range, change_after,
    ignore_if_range, no_length) and restarts the fault counters.

As a module:
    srv = DownloadServer(directory, throttle=100_000, drop_first=1, drop_after=4096)
    srv.start(); url = srv.url("model.gguf"); ...; srv.stats(); srv.stop()
As a program (prints "PORT <n>" on stdout once listening, runs until SIGTERM/SIGINT):
    python3 dlserver.py --dir DIR [--port 0] [--throttle B] [--fail-first K] ...
"""

import argparse
import base64
import email.utils
import hashlib
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 16384

_SETTING_TYPES = {
    "throttle": int,
    "fail_first": int,
    "fail_status": int,
    "drop_first": int,
    "drop_after": int,
    "no_range": bool,
    "change_after": int,
    "ignore_if_range": bool,
    "no_length": bool,
    "announce": str,
    "chunk_log": bool,
    "sndbuf": int,
    "corrupt_from": int,
}


class _State:
    """Settings and counters shared by the handler threads (guarded by `lock`)."""

    def __init__(self, directory, **settings):
        self.directory = os.path.realpath(directory)
        self.lock = threading.Lock()
        self.inflight = 0
        self.max_inflight = 0
        self.settings = {"throttle": 0, "fail_first": 0, "fail_status": 500,
                         "drop_first": 0, "drop_after": 0, "no_range": False,
                         "change_after": 0, "ignore_if_range": False, "no_length": False,
                         "announce": "", "chunk_log": False, "sndbuf": 0,
                         "corrupt_from": 0}
        self.update(settings)
        self.reset_stats()

    def update(self, settings):
        with self.lock:
            for k, v in settings.items():
                if k not in _SETTING_TYPES:
                    raise ValueError(f"unknown setting {k!r}")
                self.settings[k] = _SETTING_TYPES[k](v) if v is not None else \
                    _SETTING_TYPES[k]()
            self.failed = 0
            self.dropped = 0

    def reset_stats(self):
        with self.lock:
            self.requests = 0
            self.file_requests = 0
            self.bytes_served = 0
            self.ranges = []
            self.if_ranges = []
            self.statuses = {}
            self.paths = {}
            self.chunks = []
            self.failed = 0
            self.dropped = 0
            self.max_inflight = self.inflight

    def snapshot(self):
        with self.lock:
            return {
                "requests": self.requests,
                "file_requests": self.file_requests,
                "bytes_served": self.bytes_served,
                "ranges": list(self.ranges),
                "if_ranges": list(self.if_ranges),
                "statuses": dict(self.statuses),
                "paths": {k: dict(v) for k, v in self.paths.items()},
                "inflight": self.inflight,
                "max_inflight": self.max_inflight,
                "settings": dict(self.settings),
            }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dlserver/1"

    def log_message(self, fmt, *args):  # quiet; the tests read /_stats instead
        if os.environ.get("DLSERVER_VERBOSE"):
            sys.stderr.write("dlserver: " + (fmt % args) + "\n")

    @property
    def state(self):
        return self.server.mg_state

    # --- small helpers -------------------------------------------------------------------

    def _count_status(self, status):
        with self.state.lock:
            self.state.statuses[str(status)] = self.state.statuses.get(str(status), 0) + 1

    def _send_json(self, status, obj, extra=None):
        body = (json.dumps(obj) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        if not urllib.parse.urlsplit(self.path).path.startswith("/_"):
            self._count_status(status)

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    # --- dispatch --------------------------------------------------------------------------

    def do_GET(self):
        self._dispatch()

    def do_HEAD(self):
        self._dispatch()

    def do_POST(self):
        path = urllib.parse.urlsplit(self.path).path
        with self.state.lock:
            self.state.requests += 1
        if path == "/_control":
            try:
                settings = json.loads(self._read_body() or b"{}")
                if not isinstance(settings, dict):
                    raise ValueError("expected a JSON object")
                self.state.update(settings)
            except (ValueError, TypeError) as e:
                return self._send_json(400, {"error": str(e)})
            return self._send_json(200, self.state.snapshot()["settings"])
        if path == "/_stats/reset":
            self._read_body()
            self.state.reset_stats()
            return self._send_json(200, {"reset": True})
        self._read_body()
        self._send_json(405, {"error": "method not allowed"}, {"Allow": "GET, HEAD"})

    def do_PUT(self):
        self.do_POST()

    def do_DELETE(self):
        self.do_POST()

    def _dispatch(self):
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        with self.state.lock:
            self.state.requests += 1
        if path == "/_stats":
            return self._send_json(200, self.state.snapshot())
        if path == "/_control":
            return self._send_json(200, self.state.snapshot()["settings"])
        if path == "/_chunks":
            with self.state.lock:
                chunks = list(self.state.chunks)
            return self._send_json(200, chunks)
        self._serve_file(path)

    # --- files -----------------------------------------------------------------------------

    def _resolve(self, path):
        full = os.path.realpath(os.path.join(self.state.directory, path.lstrip("/")))
        if not full.startswith(self.state.directory + os.sep) or not os.path.isfile(full):
            return None
        return full

    def _serve_file(self, path):
        st = self.state
        with st.lock:
            st.file_requests += 1
            p = st.paths.setdefault(path, {"requests": 0, "bytes": 0})
            p["requests"] += 1
            changed = 0 < st.settings["change_after"] < p["requests"]
            s = dict(st.settings)
            fail = st.failed < s["fail_first"]
            if fail:
                st.failed += 1
        if fail:
            return self._send_json(s["fail_status"], {"error": "injected failure"})
        full = self._resolve(path)
        if full is None:
            return self._send_json(404, {"error": "not found", "path": path})
        if changed and os.path.isfile(full + ".v2"):
            full += ".v2"

        fst = os.stat(full)
        size = fst.st_size
        mtime = fst.st_mtime
        etag = '"%x-%x-%x"' % (fst.st_ino, size, fst.st_mtime_ns)
        digest = _sha256(full) if s["announce"] else None
        if s["announce"] == "etag":
            etag = f'"{digest.hex()}"'
        last_modified = email.utils.formatdate(mtime, usegmt=True)
        start, end, status = 0, size - 1, 200
        range_header = self.headers.get("Range")
        if range_header:
            with st.lock:
                st.ranges.append(range_header)
        if_range = self.headers.get("If-Range")
        if if_range is not None:
            with st.lock:
                st.if_ranges.append(if_range)
        use_range = (range_header and not s["no_range"]
                     and (if_range is None or if_range in (etag, last_modified)
                          or s["ignore_if_range"]))
        if use_range:
            parsed = _parse_range(range_header, size)
            if parsed == "unsatisfiable":
                return self._send_json(416, {"error": "range not satisfiable"},
                                       {"Content-Range": f"bytes */{size}"})
            if parsed is not None:
                start, end = parsed
                status = 206

        with st.lock:
            drop = status in (200, 206) and st.dropped < s["drop_first"]
            if drop:
                st.dropped += 1
        length = end - start + 1 if size > 0 else 0
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        if s["no_length"]:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "none" if s["no_range"] else "bytes")
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", last_modified)
        if s["announce"] == "x-linked-etag":
            self.send_header("X-Linked-Etag", f'"{digest.hex()}"')
        elif s["announce"] == "repr-digest":
            self.send_header("Repr-Digest", "sha-256=:%s:" % base64.b64encode(digest).decode())
        elif s["announce"] == "digest":
            self.send_header("Digest", "SHA-256=%s" % base64.b64encode(digest).decode())
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        self._count_status(status)
        if self.command == "HEAD":
            return
        limit = s["drop_after"] if drop else None
        if s["sndbuf"]:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, s["sndbuf"])
        with st.lock:
            st.inflight += 1
            st.max_inflight = max(st.max_inflight, st.inflight)
        try:
            self._send_body(full, path, start, length, s["throttle"], limit, s["chunk_log"],
                            s["corrupt_from"])
        finally:
            with st.lock:
                st.inflight -= 1

    def _send_body(self, full, path, start, length, throttle, limit, chunk_log=False,
                   corrupt_from=0):
        st = self.state
        sent = 0
        began = time.monotonic()
        chunk = CHUNK if not throttle else max(1, min(CHUNK, throttle // 20 or 1))
        try:
            with open(full, "rb") as f:
                f.seek(start)
                while sent < length:
                    n = min(chunk, length - sent)
                    if limit is not None:
                        n = min(n, limit - sent)
                        if n <= 0:
                            break
                    data = f.read(n)
                    if not data:
                        break
                    if 0 < corrupt_from < start + sent + len(data):
                        keep = max(0, corrupt_from - start - sent)
                        data = data[:keep] + bytes(b ^ 0xFF for b in data[keep:])
                    self.wfile.write(data)
                    self.wfile.flush()
                    sent += len(data)
                    with st.lock:
                        st.bytes_served += len(data)
                        # (a reset of the stats may come while a body is still sent)
                        st.paths.setdefault(path, {"requests": 0, "bytes": 0})["bytes"] += \
                            len(data)
                        if chunk_log:
                            st.chunks.append([time.monotonic(), len(data), path])
                    if throttle and sent < length:
                        ahead = sent / throttle - (time.monotonic() - began)
                        if ahead > 0:
                            time.sleep(ahead)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True
            return
        if limit is not None and sent < length:
            # the injected drop: close without sending the rest
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


_digests = {}


def _sha256(full):
    """The SHA-256 of the file at `full` (bytes), cached by inode, size and mtime."""
    st = os.stat(full)
    key = (full, st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _digests:
        h = hashlib.sha256()
        with open(full, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _digests[key] = h.digest()
    return _digests[key]


def _parse_range(header, size):
    """(start, end) of a single byte range, "unsatisfiable", or None to ignore it."""
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if not m or (m.group(1) == "" and m.group(2) == ""):
        return None
    if m.group(1) == "":
        n = int(m.group(2))
        if n == 0:
            return "unsatisfiable"
        return max(0, size - n), size - 1
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else size - 1
    if start >= size or end < start:
        return "unsatisfiable"
    return start, min(end, size - 1)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class DownloadServer:
    """The server in a background thread of this process."""

    def __init__(self, directory, port=0, **settings):
        self.state = _State(directory, **settings)
        self.httpd = _Server(("127.0.0.1", port), _Handler)
        self.httpd.mg_state = self.state
        self.port = self.httpd.server_address[1]
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self.port

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, name=""):
        return f"http://127.0.0.1:{self.port}/{urllib.parse.quote(name)}"

    def configure(self, **settings):
        self.state.update(settings)

    def stats(self):
        return self.state.snapshot()

    def reset_stats(self):
        self.state.reset_stats()

    def add_file(self, name, data):
        """Writes `data` (bytes) as `name` in the served directory; returns its sha256 hex."""
        path = os.path.join(self.state.directory, name)
        with open(path, "wb") as f:
            f.write(data)
        return hashlib.sha256(data).hexdigest()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True, help="directory whose files are served")
    ap.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: free port)")
    ap.add_argument("--throttle", type=int, default=0, help="bytes per second per response")
    ap.add_argument("--fail-first", type=int, default=0, help="answer the first K file requests with --fail-status")
    ap.add_argument("--fail-status", type=int, default=500)
    ap.add_argument("--drop-first", type=int, default=0, help="drop the first K served responses ...")
    ap.add_argument("--drop-after", type=int, default=0, help="... after this many body bytes")
    ap.add_argument("--no-range", action="store_true", help="ignore Range headers")
    ap.add_argument("--change-after", type=int, default=0,
                    help="serve <name>.v2 to the requests of a path after its K-th")
    ap.add_argument("--ignore-if-range", action="store_true", help="answer ranges regardless")
    ap.add_argument("--no-length", action="store_true", help="send no Content-Length")
    ap.add_argument("--port-file", help="also write the port number to this file")
    a = ap.parse_args(argv)
    srv = DownloadServer(a.dir, port=a.port, throttle=a.throttle, fail_first=a.fail_first,
                         fail_status=a.fail_status, drop_first=a.drop_first,
                         drop_after=a.drop_after, no_range=a.no_range,
                         change_after=a.change_after, ignore_if_range=a.ignore_if_range,
                         no_length=a.no_length)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    srv.start()
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write(f"{srv.port}\n")
        os.replace(a.port_file + ".tmp", a.port_file)
    print(f"PORT {srv.port}", flush=True)
    stop.wait()
    srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
