#!/usr/bin/env python3
"""test_errors.py - every answer under /api/ is JSON, errors included, in the contract's
shape: wrong methods (405 + Allow), unknown paths (404), request limits (413, 414, 400 for a
broken request), and the nchan publisher out of reach from TCP."""

import socket

import mgtest
from mgtest import SharedStackTestCase

ENDPOINTS_METHODS = [
    # path, methods that are wrong there, a method Allow must name
    ("/api/models/gallery", ("POST", "PUT", "DELETE", "PATCH"), "GET"),
    ("/api/models/gallery/search", ("POST", "PUT", "DELETE"), "GET"),
    ("/api/models/installed", ("POST", "PUT", "DELETE"), "GET"),
    ("/api/models/health", ("POST", "PUT", "DELETE"), "GET"),
    ("/api/models/jobs", ("PUT", "DELETE", "PATCH"), "GET"),
    ("/api/models/gallery/minimal-model/install", ("GET", "PUT", "DELETE"), "POST"),
    ("/api/models/minimal-model", ("POST", "PUT", "PATCH"), "DELETE"),
]


def raw_exchange(port, data, timeout=5.0):
    """Sends raw bytes and returns (status, headers dict, body bytes) of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        buf = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            buf += chunk
            if b"\r\n\r\n" in buf:
                head, body = buf.split(b"\r\n\r\n", 1)
                hdrs = dict(ln.split(b": ", 1) for ln in head.split(b"\r\n")[1:] if b": " in ln)
                n = int(hdrs.get(b"Content-Length", b"-1"))
                if 0 <= n <= len(body):
                    break
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("iso-8859-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {k.lower(): v for k, v in (ln.split(": ", 1) for ln in lines[1:] if ": " in ln)}
    return status, hdrs, body


class ErrorsTest(SharedStackTestCase):
    def test_wrong_methods(self):
        for path, methods, allowed in ENDPOINTS_METHODS:
            for method in methods:
                with self.subTest(path=path, method=method):
                    r = self.stack.request(method, path)
                    self.assertError(r, 405, "method_not_allowed", None, method)
                    allow = r.header("allow")
                    self.assertTrue(allow, f"405 without Allow: {r.headers}")
                    self.assertIn(allowed, [a.strip() for a in allow.split(",")])
                    self.assertNotIn(method, [a.strip() for a in allow.split(",")])

    def test_unknown_paths(self):
        for path in ("/api/", "/api/nope", "/api/models", "/api/models/",
                     "/api/models/gallery/extra/deeper", "/api/models/jobs/0123456789abcdef/x",
                     "/api/models/gallery/minimal-model", "/api/v2/models/gallery"):
            with self.subTest(path=path):
                self.assertError(self.stack.get(path), 404, "not_found", None, "no endpoint at")
        # /api itself is outside the API location: nginx answers, in the same shape
        self.assertError(self.stack.get("/api"), 404, "not_found", None)

    def test_get_unknown_model_path_is_json(self):
        # GET of /api/models/{id} is not an endpoint (DELETE is): 405 naming DELETE
        r = self.stack.get("/api/models/minimal-model")
        self.assertError(r, 405, "method_not_allowed", None, "allowed: DELETE")

    def test_body_too_large(self):
        r = self.stack.post("/api/models/gallery/minimal-model/install", body=b"x" * 100_000,
                            headers={"Content-Type": "application/json"})
        self.assertError(r, 413, "payload_too_large", None)

    def test_uri_too_long(self):
        r = self.stack.get("/api/models/gallery/search?query=" + "a" * 70_000)
        self.assertError(r, 414, "uri_too_long", None)

    def test_header_too_large(self):
        r = self.stack.get("/api/models/health", headers={"X-Big": "b" * 70_000})
        self.assertIn(r.status, (400, 431, 494))
        self.assertJsonAnswer(r)

    def test_broken_request(self):
        status, hdrs, body = raw_exchange(
            self.stack.port, b"GET /api/models/health HTTP/1.1\r\nHost: x\r\nBroken header\r\n\r\n")
        self.assertEqual(status, 400)
        self.assertTrue(hdrs.get("content-type", "").startswith("application/json"), hdrs)
        self.assertIn(b'"error"', body)

    def test_nul_in_path(self):
        r = self.stack.get("/api/models/gallery/search%00")
        self.assertError(r, 400, "bad_request", None)

    def test_every_answer_json(self):
        for path in ("/api/models/gallery", "/api/models/gallery/search",
                     "/api/models/installed", "/api/models/health", "/api/models/jobs"):
            with self.subTest(path=path):
                self.assertJsonAnswer(self.stack.get(path), 200)

    def test_health(self):
        body = self.assertJsonAnswer(self.stack.get("/api/models/health"), 200)
        self.assertEqual(body["status"], "ok")
        self.assertEqual(body["installer"], "running")
        self.assertEqual(body["gallery_models"], 15)

    def test_publisher_not_reachable_over_tcp(self):
        for method, path in (("POST", "/pub/progress"), ("POST", "/api/models/ws/progress"),
                             ("PUT", "/api/models/ws/progress"),
                             ("DELETE", "/api/models/ws/progress")):
            with self.subTest(method=method, path=path):
                r = self.stack.request(method, path, body=b'{"hacked": true}')
                if path == "/pub/progress":
                    self.assertError(r, 404, "not_found", None)
                else:
                    self.assertError(r, 405, "method_not_allowed", None)
        # nothing was published: a new subscriber replays nothing with "hacked"
        from wsclient import WebSocket
        with WebSocket("127.0.0.1", self.stack.port, "/api/models/ws/progress") as ws:
            for msg in ws.messages(0.5):
                self.assertNotIn("hacked", msg)

    def test_web_root(self):
        r = self.stack.get("/")
        self.assertEqual(r.status, 200)
        self.assertIn("text/html", r.header("content-type", ""))


if __name__ == "__main__":
    mgtest.main()
