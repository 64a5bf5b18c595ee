#!/usr/bin/env python3
"""test_cdn.py - galleries from a CDN (issue 4) against the real stack and a real HTTP server.

CdnServer, started by the tests on 127.0.0.1, serves gallery documents with ETag and
Last-Modified, answers If-None-Match / If-Modified-Since with 304, records every request's
headers, and can be switched to: stopped, 500, a truncated body, invalid JSON, a gallery with
no valid model, a slow answer (timeout) or a redirect loop. The stack runs with gallery_url
(or galleries) pointing at it; refreshes are asked for with POST /api/models/gallery/refresh
and followed in GET /api/models/gallery/status.
"""

import email.utils
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import mgtest
from mgtest import Stack, StackTestCase, free_port, wait_until

SHA = "sha256:" + "ab" * 32


def model(mid, name=None, **extra):
    m = {"id": mid, "name": name or mid.upper(), "checksum": SHA,
         "downloadUrl": f"https://files.example.org/{mid}.gguf", "sizeGb": 1.25,
         "rating": 4.0, "tags": ["cdn"]}
    m.update(extra)
    return m


def gallery(*models, version="1"):
    return {"version": version, "generatedAt": "2026-11-26T00:00:00Z", "models": list(models)}


LOCAL = gallery(model("local-a"), model("local-b"), version="local")


class CdnServer:
    """A gallery CDN on 127.0.0.1. Documents per path; `mode` switches the fault served."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.docs = {}  # path -> {"body": bytes, "etag": str, "last_modified": str}
        self.mode = "ok"
        self.requests = []  # [{"path", "headers": {lower-name: value}, "status"}]
        self.lock = threading.Lock()
        self.httpd = None
        self.thread = None

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def publish(self, path, doc, etag, when=None):
        body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        lm = email.utils.formatdate(when if when is not None else time.time(), usegmt=True)
        with self.lock:
            self.docs[path] = {"body": body, "etag": etag, "last_modified": lm}
        return lm

    def set_mode(self, mode):
        with self.lock:
            self.mode = mode

    def requests_for(self, path):
        with self.lock:
            return [r for r in self.requests if r["path"] == path]

    def start(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def send(self, status, body=b"", headers=None, length=None):
                self.rec["status"] = status  # recorded before the client can see the answer
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.send_header("Connection", "close")
                self.end_headers()
                if body:
                    self.wfile.write(body)
                self.wfile.flush()
                self.close_connection = True
                return status

            def do_GET(self):
                with server.lock:
                    doc = server.docs.get(self.path)
                    mode = server.mode
                    rec = {"path": self.path,
                           "headers": {k.lower(): v for k, v in self.headers.items()}}
                    server.requests.append(rec)
                self.rec = rec
                try:
                    self.answer(doc, mode)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the refresher gave up (timeout, size cap)

            def answer(self, doc, mode):
                if mode == "500":
                    return self.send(500, b"internal error")
                if mode == "redirect_loop":
                    return self.send(302, b"", {"Location": self.path})
                if mode == "slow":
                    time.sleep(6)
                if doc is None:
                    return self.send(404, b"not here")
                validators = {"ETag": doc["etag"], "Last-Modified": doc["last_modified"],
                              "Content-Type": "application/json"}
                inm = self.headers.get("If-None-Match")
                ims = self.headers.get("If-Modified-Since")
                if (inm is not None and inm == doc["etag"]) or \
                        (inm is None and ims is not None and ims == doc["last_modified"]):
                    return self.send(304, b"", {"ETag": doc["etag"],
                                                "Last-Modified": doc["last_modified"]})
                body = doc["body"]
                if mode == "truncated":
                    # Promise the whole body, send half of it and close.
                    return self.send(200, body[: len(body) // 2], validators, len(body))
                if mode == "invalid_json":
                    return self.send(200, b"{\"models\": [ this is not json", validators)
                if mode == "big":
                    pad = body[:-1] + b" " * 100_000 + body[-1:]
                    return self.send(200, pad, validators)
                if mode == "big_stream":
                    # No Content-Length: the size is known only while reading.
                    self.rec["status"] = 200
                    self.send_response(200)
                    for k, v in validators.items():
                        self.send_header(k, v)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.close_connection = True
                    for _ in range(20):
                        self.wfile.write(b" " * 8192)
                    self.wfile.write(body)
                    return 200
                if mode == "no_valid":
                    bad = json.dumps(gallery({"id": "x y", "name": ""}, {"id": "ok-id"}))
                    return self.send(200, bad.encode(), validators)
                return self.send(200, body, validators)

        ThreadingHTTPServer.allow_reuse_address = True
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(5)
            self.httpd = None


class CdnTestCase(StackTestCase):
    """Helpers shared by the scenarios."""

    def status(self, s):
        return self.assertJsonAnswer(s.get("/api/models/gallery/status"), 200)

    def refresh(self, s, headers=None):
        """POST refresh (202) and wait until the refresher has handled it; returns status."""
        r = s.post("/api/models/gallery/refresh", headers=headers)
        body = self.assertJsonAnswer(r, 202)
        rid = body["request_id"]
        self.assertIsInstance(rid, int)

        def handled():
            st = self.status(s)
            done = st.get("last_request_id")
            return st if isinstance(done, int) and done >= rid else None

        return wait_until(handled, timeout=30, interval=0.1, what=f"refresh request {rid}")

    def ids(self, s):
        body = self.assertJsonAnswer(s.gallery(), 200)
        return [m["id"] for m in body["models"]]

    def wait_ids(self, s, ids, timeout=30):
        return wait_until(lambda: self.ids(s) == list(ids), timeout=timeout, interval=0.1,
                          what=f"gallery ids {ids} (have {self.ids(s)})")

    def source(self, st, name="default"):
        for e in st["sources"]:
            if e["name"] == name:
                return e
        self.fail(f"no source {name} in status {st}")

    def cdn_stack(self, cdn, server_extra=None, env=None):
        server = {"gallery_url": cdn.url("/g.json"), "allow_http": True,
                  "gallery_cache_ttl_s": 3600}
        server.update(server_extra or {})
        e = {"MG_FETCH_TIMEOUT_S": "3", "MG_FETCH_CONNECT_TIMEOUT_S": "2"}
        e.update(env or {})
        return Stack(gallery=LOCAL, server=server, env=e)


class TestConditionalRefresh(CdnTestCase):
    def test_conditional_headers_304_and_new_etag(self):
        cdn = CdnServer().start()
        self.addCleanup(cdn.stop)
        lm1 = cdn.publish("/g.json", gallery(model("cdn-a"), model("cdn-b"),
                                             {"id": "bad one", "name": "x"}), '"v1"',
                          when=time.time() - 3600)
        with self.cdn_stack(cdn) as s:
            # The refresher fetches at start: the CDN's models replace the local ones.
            self.wait_ids(s, ["cdn-a", "cdn-b"])
            body = s.gallery().json
            self.assertTrue(all(m["gallery"] == "default" for m in body["models"]), body)
            st = self.refresh(s)
            self.assertEqual(st["mode"], "remote")
            src = self.source(st)
            self.assertEqual(src["url"], cdn.url("/g.json"))
            self.assertIsNone(src["path"])
            self.assertEqual(src["etag"], '"v1"')
            self.assertEqual(src["last_modified"], lm1)
            self.assertEqual(src["model_count"], 2)
            self.assertIsNotNone(src["last_attempt"])
            self.assertIsNotNone(src["last_success"])
            self.assertIsNone(src["error"])
            self.assertEqual(len(src["invalid"]), 1, src)
            bad = src["invalid"][0]
            self.assertEqual((bad["index"], bad["id"]), (2, "bad one"))
            self.assertTrue(bad["reason"])
            # That refresh was conditional and answered 304.
            self.assertEqual(src["http_status"], 304)
            last = cdn.requests_for("/g.json")[-1]
            self.assertEqual(last["headers"].get("if-none-match"), '"v1"')
            self.assertEqual(last["headers"].get("if-modified-since"), lm1)
            self.assertEqual(last["status"], 304)

            # A 304 changes nothing: same cache file, same ETag, same answer.
            cache = s.path("cache", "gallery_cache.json")
            before = os.stat(cache)
            etag = s.gallery().header("etag")
            n = len(cdn.requests_for("/g.json"))
            st = self.refresh(s)
            self.assertEqual(len(cdn.requests_for("/g.json")), n + 1)
            self.assertEqual(self.source(st)["http_status"], 304)
            after = os.stat(cache)
            self.assertEqual((before.st_ino, before.st_mtime_ns), (after.st_ino, after.st_mtime_ns))
            self.assertEqual(s.gallery().header("etag"), etag)
            r = s.get("/api/models/gallery", headers={"If-None-Match": etag})
            self.assertEqual(r.status, 304)

            # A new ETag brings the new models into answers (whole gallery and search).
            cdn.publish("/g.json", gallery(model("cdn-a"), model("cdn-c", name="Brand New")),
                        '"v2"')
            st = self.refresh(s)
            src = self.source(st)
            self.assertEqual((src["http_status"], src["etag"], src["model_count"]), (200, '"v2"', 2))
            self.assertEqual(src["invalid"], [])
            self.assertEqual(cdn.requests_for("/g.json")[-1]["headers"].get("if-none-match"), '"v1"')
            self.assertEqual(self.ids(s), ["cdn-a", "cdn-c"])
            self.assertNotEqual(s.gallery().header("etag"), etag)
            r = s.search({"query": "brand new"})
            self.assertIds(r, ["cdn-c"])
            self.assertEqual(r.json["models"][0]["gallery"], "default")
            self.assertIn("gallery", s.get("/api/models/gallery/search").json["models"][0])


class TestFailuresKeepLastGood(CdnTestCase):
    def test_failures(self):
        cdn = CdnServer().start()
        self.addCleanup(cdn.stop)
        cdn.publish("/g.json", gallery(model("cdn-a"), model("cdn-b")), '"v1"')
        with self.cdn_stack(cdn, env={"MG_FETCH_MAX_BYTES": "65536"}) as s:
            self.wait_ids(s, ["cdn-a", "cdn-b"])
            # The CDN changes, but every answer it gives is broken: the last good stays.
            cdn.publish("/g.json", gallery(model("cdn-z")), '"v2"')
            cases = [
                ("500", 500, "500"),
                ("truncated", 200, None),
                ("invalid_json", 200, "not valid JSON"),
                ("no_valid", 200, "no valid model"),
                ("slow", None, None),
                ("redirect_loop", 302, "redirect"),
                ("big", 200, "larger than 65536 bytes"),
                ("big_stream", 200, "larger than 65536 bytes"),
            ]
            for mode, http_status, text in cases:
                with self.subTest(mode=mode):
                    cdn.set_mode(mode)
                    st = self.refresh(s)
                    src = self.source(st)
                    self.assertIsNotNone(src["error"], src)
                    self.assertEqual(src["last_error"], src["error"])
                    if text:
                        self.assertIn(text.lower(), src["error"].lower(), src)
                    if http_status is not None:
                        self.assertEqual(src["http_status"], http_status, src)
                    self.assertEqual(src["etag"], '"v1"', "validators of the last good answer")
                    self.assertEqual(src["model_count"], 2)
                    self.assertEqual(self.ids(s), ["cdn-a", "cdn-b"])
                    self.assertEqual(s.search({"query": "cdn"}).json["total"], 2)
                    if mode == "no_valid":
                        reasons = [e["reason"] for e in src["invalid"]]
                        self.assertEqual(len(reasons), 2, src)
                        self.assertTrue(all(reasons), src)
            # Stopped: connection refused.
            cdn.set_mode("ok")
            cdn.stop()
            st = self.refresh(s)
            src = self.source(st)
            self.assertIsNotNone(src["error"])
            self.assertIsNone(src["http_status"])
            self.assertEqual(self.ids(s), ["cdn-a", "cdn-b"])
            self.assertFalse(st["serving"]["fallback"])
            # Back again: the new version arrives and the error clears.
            cdn.start()
            st = self.refresh(s)
            src = self.source(st)
            self.assertIsNone(src["error"], src)
            self.assertIsNotNone(src["last_error"])
            self.assertEqual(src["etag"], '"v2"')
            self.assertEqual(self.ids(s), ["cdn-z"])
            self.assertIn("installer", s.logs())


class TestPeriodicRefresh(CdnTestCase):
    def test_ttl(self):
        cdn = CdnServer().start()
        self.addCleanup(cdn.stop)
        cdn.publish("/g.json", gallery(model("cdn-a")), '"v1"')
        with self.cdn_stack(cdn, {"gallery_cache_ttl_s": 1}) as s:
            self.wait_ids(s, ["cdn-a"])
            answered = lambda: [r for r in cdn.requests_for("/g.json") if "status" in r]
            wait_until(lambda: len(answered()) >= 3, timeout=15,
                       what="two refreshes by the TTL alone")
            reqs = answered()
            self.assertEqual(reqs[0]["status"], 200)
            self.assertTrue(all(r["headers"].get("if-none-match") == '"v1"' and r["status"] == 304
                                for r in reqs[1:3]), reqs)
            cdn.publish("/g.json", gallery(model("cdn-b")), '"v2"')
            self.wait_ids(s, ["cdn-b"], timeout=15)
            st = self.status(s)
            self.assertEqual(st["ttl_s"], 1)
            self.assertIsNotNone(st["next_refresh_at"])


class TestSeveralSources(CdnTestCase):
    def test_merge_with_clash(self):
        cdn = CdnServer().start()
        self.addCleanup(cdn.stop)
        cdn.publish("/alpha.json", gallery(model("x-1"), model("shared", name="Shared Alpha")),
                    '"a1"')
        cdn.publish("/beta.json", gallery(model("shared", name="Shared Beta"), model("y-1")),
                    '"b1"')
        server = {"allow_http": True, "galleries": [
            {"name": "alpha", "url": cdn.url("/alpha.json")},
            {"name": "beta", "url": cdn.url("/beta.json")},
            {"name": "lab", "path": "config/lab.json"},
        ]}
        s = Stack(gallery=LOCAL, server=server, start=False)
        with s:
            s.write_json("config/lab.json", gallery(model("lab-1"), model("y-1", name="Lab Y")))
            s.start()
            self.wait_ids(s, ["x-1", "shared", "y-1", "lab-1"])
            body = s.gallery().json
            by_id = {m["id"]: m for m in body["models"]}
            self.assertEqual(by_id["shared"]["name"], "Shared Alpha")
            self.assertEqual(by_id["shared"]["gallery"], "alpha")
            self.assertEqual(by_id["y-1"]["gallery"], "beta")
            self.assertEqual(by_id["lab-1"]["gallery"], "lab")
            st = self.refresh(s)
            clashes = sorted((c["id"], c["kept"], c["dropped"]) for c in st["clashes"])
            self.assertEqual(clashes, [("shared", "alpha", "beta"), ("y-1", "beta", "lab")])
            self.assertEqual(self.source(st, "beta")["clashes"], [{"id": "shared", "kept": "alpha"}])
            self.assertEqual(self.source(st, "alpha")["clashes"], [])
            lab = self.source(st, "lab")
            self.assertIsNone(lab["url"])
            self.assertTrue(lab["path"].endswith("/config/lab.json"), lab)
            self.assertEqual(lab["model_count"], 2)
            self.assertEqual([e["name"] for e in st["sources"]], ["alpha", "beta", "lab"])
            r = s.search({"query": "y-1"})
            self.assertEqual([m["gallery"] for m in r.json["models"]], ["beta"])

            # One source failing keeps its own last good models; the others go on.
            cdn.set_mode("500")
            s.write_json("config/lab.json", gallery(model("lab-2")))
            st = self.refresh(s)
            self.assertIsNotNone(self.source(st, "alpha")["error"])
            self.assertIsNone(self.source(st, "lab")["error"])
            self.wait_ids(s, ["x-1", "shared", "y-1", "lab-2"])


class TestNoCacheCdnDown(CdnTestCase):
    def test_local_file_serves(self):
        port = free_port()  # nothing listens there yet
        cdn = CdnServer(port)
        self.addCleanup(cdn.stop)
        with self.cdn_stack(cdn) as s:
            self.assertEqual(self.ids(s), ["local-a", "local-b"])
            st = wait_until(lambda: (lambda x: x if x["sources"][0]["last_attempt"] else None)(
                self.status(s)), timeout=30, what="a first attempt")
            src = self.source(st)
            self.assertIsNotNone(src["error"])
            self.assertIsNone(src["last_success"])
            self.assertTrue(st["serving"]["fallback"], st)
            self.assertEqual(s.search({"query": "local"}).json["total"], 2)
            # The CDN comes up: its gallery replaces the local one.
            cdn.publish("/g.json", gallery(model("cdn-a")), '"v1"')
            cdn.start()
            st = self.refresh(s)
            self.assertIsNone(self.source(st)["error"])
            self.assertFalse(st["serving"]["fallback"])
            self.assertEqual(self.ids(s), ["cdn-a"])

    def test_plain_http_needs_allow_http(self):
        cdn = CdnServer().start()
        self.addCleanup(cdn.stop)
        cdn.publish("/g.json", gallery(model("cdn-a")), '"v1"')
        with self.cdn_stack(cdn, {"allow_http": False}) as s:
            st = self.refresh(s)
            self.assertIn("allow_http", self.source(st)["error"])
            self.assertEqual(self.ids(s), ["local-a", "local-b"])
            self.assertEqual(cdn.requests_for("/g.json"), [])


class TestEndpoints(CdnTestCase):
    def test_token_methods_and_local_mode(self):
        with Stack(gallery=LOCAL, server={"api_token": "s3cret"}) as s:
            self.assertError(s.post("/api/models/gallery/refresh"), 401, "unauthorized", None)
            self.assertError(s.post("/api/models/gallery/refresh",
                                    headers={"Authorization": "Bearer wrong"}), 401,
                             "unauthorized", None)
            st = self.refresh(s, headers={"Authorization": "Bearer s3cret"})
            self.assertEqual(st["mode"], "local")
            src = self.source(st)
            self.assertIsNone(src["url"])
            self.assertTrue(src["path"].endswith("/config/models_gallery.json"))
            self.assertEqual(src["model_count"], 2)
            r = s.get("/api/models/gallery/refresh")
            self.assertError(r, 405, "method_not_allowed", None)
            self.assertIn("POST", r.header("allow"))
            r = s.delete("/api/models/gallery/status", headers={"Authorization": "Bearer s3cret"})
            self.assertError(r, 405, "method_not_allowed", None)
            self.assertIn("GET", r.header("allow"))


if __name__ == "__main__":
    mgtest.main()
