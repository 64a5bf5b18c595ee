#!/usr/bin/env python3
"""test_security.py - issue 8 "safe by default" against the real stack, each refusal checked
together with "nothing happened" (no job file, no byte asked of the download server, no file
removed):

- browser origin: cross-origin POST and DELETE (Origin, Sec-Fetch-Site) get 403
  forbidden_origin; same-origin pages, allowed_origins and clients without Origin pass;
- Host: a foreign Host (and a DNS-rebinding one: another name, this IP and port) gets 421
  misdirected_request from the API, the UI, the gallery file and the progress socket;
  server_names changes take effect at runtime;
- the progress WebSocket: a foreign Origin 403, with api_token 401 without the token, 101
  with it (header or access_token);
- the token fails closed: an unreadable or broken server.json gives 503 config_unavailable for
  changes (also after the workers restart) while reads work; fixed, the token rules again;
- bounds: a query string over 8 KiB 414, more than 32 distinct terms or a term over 64 bytes
  400 naming query; health keeps answering while 64 connections send worst-case searches;
- files: links planted at a partial, at models/llm/{id}.gguf, at a job file or as the partial
  folder are never followed (the target outside stays as it was);
- settings: over-long values are readable errors, the installer stays up on the last good
  settings;
- logs and answers: a newline in a gallery id never forges a log line; URL credentials and
  query strings never show in the status, job errors or the logs.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import mgtest
from mgtest import REPO, Stack, StackTestCase, free_port, request, wait_until
from test_install import SLOW, FAST_ENV, DlServer, file_sha256, gallery, model
from wsclient import WebSocket

EVIL = "http://evil.example"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (\[(info|warn|error)\] |deploy/up: )")


def handshake(port, path="/api/models/ws/progress", headers=None, host=None):
    """A WebSocket opening handshake; returns (status, headers, body) of the answer."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host or f'127.0.0.1:{port}'}",
             "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = c.recv(4096)
            if not chunk:
                break
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        hdrs = {}
        for ln in head.decode("iso-8859-1").split("\r\n")[1:]:
            k, _, v = ln.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        status = int(head.split(b" ", 2)[1])
        if status != 101:
            n = int(hdrs.get("content-length", "0"))
            while len(body) < n:
                chunk = c.recv(4096)
                if not chunk:
                    break
                body += chunk
        return status, hdrs, body


def job_files(stack):
    d = stack.path("jobs")
    return sorted(n for n in os.listdir(d) if n.endswith(".json")) if os.path.isdir(d) else []


class SecurityCase(StackTestCase):
    """Shared assertions."""

    def assertRefused(self, r, status, code, parameter=None):
        err = self.assertError(r, status, code, parameter)
        self.assertNotIn("<html", r.body.decode(errors="replace").lower())
        return err

    def assertNothingDone(self, stack, dl, jobs_before, files=()):
        """No new job file, no request to the download server, the files still there."""
        time.sleep(0.5 * SLOW)  # what a queued job would do happens in well under that
        self.assertEqual(job_files(stack), jobs_before, "a job file appeared")
        if dl is not None:
            self.assertEqual(dl.stats()["file_requests"], 0, "the download server was asked")
        for path in files:
            self.assertTrue(os.path.exists(path), f"{path} was removed")


# --- origin and Host -------------------------------------------------------------------------

class OriginAndHostTest(SecurityCase):
    """One stack with an installed model, a model that can be installed, and a dash origin."""

    @classmethod
    def setUpClass(cls):
        cls.dl = DlServer()
        cls.addClassCleanup(cls.dl.stop)
        cls.sha = {n: cls.dl.add_random(n, 4096) for n in ("a.gguf", "b.gguf")}
        models = [model("sec-a", cls.dl.url("a.gguf"), cls.sha["a.gguf"], 4096),
                  model("sec-b", cls.dl.url("b.gguf"), cls.sha["b.gguf"], 4096)]
        cls.stack = Stack(gallery=gallery(models), env=FAST_ENV, server={
            "allow_http": True, "allowed_origins": ["http://dash.localhost:3000"]})
        cls.addClassCleanup(cls.stack.stop)
        s = cls.stack
        r = s.post("/api/models/gallery/sec-a/install")
        assert r.status == 202, r
        wait_until(lambda: s.get(f"/api/models/jobs/{r.json['job_id']}").json["status"]
                   == "installed", 30 * SLOW, what="sec-a installed")

    def setUp(self):
        self.dl.reset()
        self.port = self.stack.port
        self.model_file = self.stack.path("models", "llm", "sec-a.gguf")

    def test_cross_origin_writes_refused(self):
        s, before = self.stack, job_files(self.stack)
        other = free_port()
        for headers in ({"Origin": EVIL}, {"Origin": "null"},
                        {"Origin": f"http://127.0.0.1:{other}"},
                        {"Origin": f"http://attacker.example:{self.port}"},
                        {"Sec-Fetch-Site": "cross-site"},
                        {"Origin": f"http://127.0.0.1:{self.port}", "Sec-Fetch-Site": "cross-site"}):
            with self.subTest(headers=headers):
                self.assertRefused(s.post("/api/models/gallery/sec-b/install", headers=headers),
                                   403, "forbidden_origin")
                self.assertRefused(s.delete("/api/models/sec-a", headers=headers),
                                   403, "forbidden_origin")
                self.assertRefused(s.post("/api/models/gallery/refresh", headers=headers),
                                   403, "forbidden_origin")
        self.assertNothingDone(s, self.dl, before, [self.model_file])
        self.assertFalse(os.path.exists(s.path("cache", "refresh.request")))
        self.assertEqual(s.get("/api/models/installed").json["models"]["sec-a"]["status"],
                         "installed")

    def test_same_origin_allowed_origins_and_curl_pass(self):
        s = self.stack
        for origin in (f"http://127.0.0.1:{self.port}", f"http://LOCALHOST:{self.port}",
                       "http://dash.localhost:3000"):
            with self.subTest(origin=origin):
                r = s.post("/api/models/gallery/refresh",
                           headers={"Origin": origin, "Sec-Fetch-Site": "same-origin"})
                self.assertJsonAnswer(r, 202)
        self.assertJsonAnswer(s.post("/api/models/gallery/refresh"), 202)  # no Origin: curl
        # GETs are not judged by origin
        self.assertJsonAnswer(s.get("/api/models/health", headers={"Origin": EVIL}), 200)

    def test_foreign_host_refused_everywhere(self):
        s, before = self.stack, job_files(self.stack)
        etag = s.get("/api/models/gallery").header("etag")
        for host in ("attacker.example", f"attacker.example:{self.port}",
                     f"127.0.0.1:{free_port()}", f"localhost.evil:{self.port}"):
            for method, path, extra in (
                    ("GET", "/api/models/health", {}),
                    ("GET", "/api/models/gallery", {}),
                    ("GET", "/api/models/gallery", {"If-None-Match": etag}),
                    ("GET", "/api/models/gallery/search?query=sec", {}),
                    ("GET", "/", {}),
                    ("GET", "/css/app.css", {}),
                    ("GET", "/nothing-here", {}),
                    ("POST", "/api/models/gallery/sec-b/install", {}),
                    ("DELETE", "/api/models/sec-a", {}),
                    ("GET", "/api/models/ws/progress", {"Accept": "text/event-stream"})):
                with self.subTest(host=host, method=method, path=path):
                    r = s.request(method, path, headers=dict(extra, Host=host))
                    self.assertRefused(r, 421, "misdirected_request")
            with self.subTest(host=host, what="websocket"):
                status, _, body = handshake(self.port, host=host)
                self.assertEqual(status, 421, body)
                self.assertEqual(json.loads(body)["error"]["code"], "misdirected_request")
        self.assertNothingDone(s, self.dl, before, [self.model_file])
        # no Host at all (HTTP/1.0)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as c:
            c.sendall(b"GET /api/models/health HTTP/1.0\r\n\r\n")
            self.assertIn(b" 421 ", c.recv(4096).split(b"\r\n")[0] + b" ")

    def test_allowed_hosts(self):
        s = self.stack
        for host in (f"127.0.0.1:{self.port}", f"localhost:{self.port}", f"LocalHost:{self.port}",
                     f"[::1]:{self.port}"):
            with self.subTest(host=host):
                self.assertJsonAnswer(s.get("/api/models/health", headers={"Host": host}), 200)
                self.assertEqual(s.get("/", headers={"Host": host}).status, 200)
                self.assertJsonAnswer(s.get("/api/models/gallery", headers={"Host": host}), 200)

    def test_websocket_origin(self):
        status, _, body = handshake(self.port, headers={"Origin": EVIL})
        self.assertEqual(status, 403, body)
        self.assertEqual(json.loads(body)["error"]["code"], "forbidden_origin")
        status, _, _ = handshake(self.port, headers={"Sec-Fetch-Site": "cross-site"})
        self.assertEqual(status, 403)
        status, _, _ = handshake(self.port, headers={"Origin": f"http://127.0.0.1:{self.port}"})
        self.assertEqual(status, 101)

    def test_security_headers(self):
        for path in ("/", "/api/models/health", "/api/models/gallery", "/api/models/nope"):
            with self.subTest(path=path):
                r = self.stack.get(path)
                csp = r.header("content-security-policy", "")
                self.assertIn("default-src 'self'", csp)
                self.assertIn("frame-ancestors 'none'", csp)
                self.assertNotIn("unsafe-inline", csp)
                self.assertEqual(r.header("x-content-type-options"), "nosniff")
                self.assertEqual(r.header("referrer-policy"), "no-referrer")

    def test_bounds(self):
        s = self.stack
        long_q = "query=" + "a" * 8200
        for path in ("/api/models/gallery/search?" + long_q, "/api/models/health?" + long_q,
                     "/?" + long_q, "/api/models/gallery?" + long_q):
            with self.subTest(path=path[:40]):
                self.assertRefused(s.get(path), 414, "uri_too_long")
        terms = [f"t{i}" for i in range(33)]
        err = self.assertRefused(s.search({"query": " ".join(terms)}), 400, "invalid_parameter",
                                 "query")
        err = self.assertRefused(s.search({"query": "ok " + "x" * 65}), 400, "invalid_parameter",
                                 "query")
        self.assertIn("64 bytes", err["message"])
        # 32 distinct terms repeated up to 8 KiB: fine, repeats do not count
        words = "+".join(terms[:32])
        q = "query=" + "+".join([words] * (8150 // (len(words) + 1)))
        self.assertLessEqual(len(q), 8192)
        self.assertJsonAnswer(s.search(raw=q), 200)
        self.assertJsonAnswer(s.search({"query": "x" * 64}), 200)


class ServerNamesTest(SecurityCase):
    def test_server_names_change_at_runtime(self):
        with Stack(gallery="gallery_it.json") as s:
            name = f"models.lan:{s.port}"
            self.assertRefused(s.get("/api/models/health", headers={"Host": name}), 421,
                               "misdirected_request")
            s.write_json("config/server.json", {"server_names": ["models.lan", "box.lan:9"]})
            for host in (name, "models.lan", "MODELS.LAN:1234", "box.lan:9"):
                with self.subTest(host=host):
                    wait_until(lambda: s.get("/api/models/health", headers={"Host": host})
                               .status == 200, 5, what=f"Host {host} allowed")
                    self.assertEqual(s.get("/", headers={"Host": host}).status, 200)
                    self.assertJsonAnswer(s.get("/api/models/gallery", headers={"Host": host}), 200)
            self.assertEqual(handshake(s.port, host=name,
                                       headers={"Origin": f"http://{name}"})[0], 101)
            # a page of the named host may write; another port of box.lan is another origin
            r = s.post("/api/models/gallery/refresh",
                       headers={"Host": name, "Origin": f"http://{name}"})
            self.assertJsonAnswer(r, 202)
            r = s.post("/api/models/gallery/refresh", headers={"Origin": "http://box.lan:10"})
            self.assertRefused(r, 403, "forbidden_origin")
            self.assertRefused(s.get("/", headers={"Host": "box.lan:10"}), 421,
                               "misdirected_request")
            s.write_json("config/server.json", {})
            wait_until(lambda: s.get("/", headers={"Host": name}).status == 421, 5,
                       what="models.lan refused again")


# --- the progress socket and the token -------------------------------------------------------

class TokenTest(SecurityCase):
    TOKEN = "t0ken-" + "x" * 20

    def test_websocket_needs_the_token(self):
        with Stack(gallery="gallery_it.json", server={"api_token": self.TOKEN}) as s:
            status, hdrs, body = handshake(s.port)
            self.assertEqual(status, 401, body)
            self.assertEqual(json.loads(body)["error"]["code"], "unauthorized")
            status, _, _ = handshake(s.port, "/api/models/ws/progress?access_token=wrong")
            self.assertEqual(status, 401)
            status, _, _ = handshake(s.port, headers={"Origin": EVIL,
                                                      "Authorization": f"Bearer {self.TOKEN}"})
            self.assertEqual(status, 403)
            self.assertEqual(handshake(s.port, headers={
                "Authorization": f"Bearer {self.TOKEN}"})[0], 101)
            with WebSocket("127.0.0.1", s.port,
                           f"/api/models/ws/progress?access_token={self.TOKEN}") as ws:
                msg = {"model_id": "m", "job_id": "0123456789abcdef", "status": "queued",
                       "progress": 0, "downloaded": 0, "total": 0, "bytes_per_second": 0,
                       "error": None}
                self.assertIn(s.publish(msg), (201, 202))
                self.assertEqual(ws.recv_json(5), msg)
            # EventSource too
            r = s.get("/api/models/ws/progress", headers={"Accept": "text/event-stream"})
            self.assertRefused(r, 401, "unauthorized")

    def test_token_fails_closed(self):
        with Stack(gallery="gallery_it.json") as s:  # the master starts without a token
            before = job_files(s)
            post = "/api/models/gallery/minimal-model/install"
            auth = {"Authorization": f"Bearer {self.TOKEN}"}
            s.write_json("config/server.json", {"api_token": self.TOKEN})
            wait_until(lambda: s.post(post).status == 401, 5, what="the token required")
            for broken in ("{\"api_token\": ", "dir"):
                with self.subTest(broken=broken):
                    if broken == "dir":
                        os.unlink(s.path("config", "server.json"))
                        os.mkdir(s.path("config", "server.json"))
                    else:
                        s.write_file("config/server.json", broken)
                    for headers in (auth, {}):
                        err = self.assertRefused(s.post(post, headers=headers), 503,
                                                 "config_unavailable")
                        self.assertIn("server.json", err["message"])
                    self.assertJsonAnswer(s.get("/api/models/health"), 200)
                    self.assertJsonAnswer(s.search({"query": "qwen"}), 200)
                    # workers restarted now start from the master's settings (no token):
                    # still closed
                    self.kill_workers(s)
                    self.assertRefused(s.post(post), 503, "config_unavailable")
                    self.assertRefused(s.delete("/api/models/minimal-model"), 503,
                                       "config_unavailable")
            self.assertNothingDone(s, None, before)
            os.rmdir(s.path("config", "server.json"))
            s.write_json("config/server.json", {"api_token": self.TOKEN})
            wait_until(lambda: s.post(post).status == 401, 5, what="the token rules again")
            self.assertError(s.post(post, headers={"Authorization": "Bearer wrong"}), 401,
                             "unauthorized", None)
            self.assertJsonAnswer(s.post("/api/models/gallery/refresh", headers=auth), 202)
            self.assertIn("keeping the previous settings", s.log("fcgi"))

    def test_fcgi_started_on_a_broken_file_refuses_changes(self):
        with Stack(gallery="gallery_it.json", server={"api_token": self.TOKEN}) as s:
            old = s.pid("fcgi")
            s.write_file("config/server.json", "{broken")
            # stopped, the supervisor starts it again at once: on the broken file
            os.kill(old, signal.SIGTERM)
            wait_until(lambda: not mgtest.alive(old), 10, what="mg-fcgi stopped")
            wait_until(lambda: s.pid("fcgi") not in (None, old) and
                       s.get("/api/models/health").status == 200, 10 * SLOW,
                       what="the new mg-fcgi answers")
            s.record_pids()
            self.assertJsonAnswer(s.search({"query": "qwen"}), 200)
            for headers in ({}, {"Authorization": f"Bearer {self.TOKEN}"}):
                self.assertRefused(s.post("/api/models/gallery/refresh", headers=headers),
                                   503, "config_unavailable")
            self.assertIn("serving reads only", s.log("fcgi"))

    @staticmethod
    def kill_workers(s):
        master = s.pid("fcgi")
        kids = [int(p) for p in os.listdir("/proc") if p.isdigit()
                and (mgtest.proc_stat(int(p)) or ("", 0))[1] == master]
        assert kids, "no mg-fcgi worker found"
        for k in kids:
            os.kill(k, signal.SIGKILL)
        wait_until(lambda: all(not mgtest.alive(k) for k in kids), 5, what="workers gone")
        wait_until(lambda: s.get("/api/models/health").status == 200, 10 * SLOW,
                   what="workers back")


# --- worst-case searches do not starve health -------------------------------------------------

def worst_query(doc):
    """32 distinct one-character terms, the ones the most models hold: every term keeps
    nearly every model a candidate, the costliest query the bounds let through."""
    counts = {}
    for m in doc["models"]:
        hay = " ".join(str(v) for v in [m.get("id"), m.get("name"), m.get("description")]
                       + (m.get("tags") or []) + (m.get("categories") or []) if v).lower()
        for c in set(ch for ch in hay if ch.isalnum()):
            counts[c] = counts.get(c, 0) + 1
    top = sorted(counts, key=lambda c: (-counts[c], c))[:32]
    return "query=" + "+".join(top)


class FloodTest(SecurityCase):
    MODELS = 3000

    def test_health_answers_during_a_flood_of_worst_case_searches(self):
        gen = subprocess.run([sys.executable, os.path.join(REPO, "bench", "gen_gallery.py"),
                              str(self.MODELS)], check=True, capture_output=True).stdout
        worst = worst_query(json.loads(gen))
        with Stack(gallery=gen.decode(), env={"MG_WORKERS": "2"}) as s:
            wait_until(lambda: s.get("/api/models/health").json["gallery_models"] == self.MODELS,
                       30 * SLOW, what="the gallery loaded")
            stop = threading.Event()
            counts = {"ok": 0}
            lock = threading.Lock()

            def flood():
                while not stop.is_set():
                    try:
                        st = s.request("GET", "/api/models/gallery/search?" + worst,
                                       timeout=120).status
                    except OSError:
                        st = 0  # a slow (sanitizer) build can leave the queue this deep
                    with lock:
                        key = "ok" if st == 200 else "timeout" if st == 0 else "other"
                        counts[key] = counts.get(key, 0) + 1

            threads = [threading.Thread(target=flood, daemon=True) for _ in range(64)]
            for t in threads:
                t.start()
            latencies = []
            try:
                time.sleep(0.5)
                end = time.monotonic() + 4
                while time.monotonic() < end:
                    t0 = time.monotonic()
                    r = s.get("/api/models/health")
                    latencies.append(time.monotonic() - t0)
                    self.assertJsonAnswer(r, 200)
                    time.sleep(0.1)
            finally:
                stop.set()
                for t in threads:
                    t.join(30)
            print(f"flood: {counts['ok']} worst-case searches answered, health max "
                  f"{max(latencies) * 1000:.0f} ms over {len(latencies)} probes", file=sys.stderr)
            self.assertGreater(counts["ok"], 0)  # the searches were answered all along
            self.assertEqual(counts.get("other", 0), 0, counts)  # and never with an error
            self.assertLess(max(latencies), 1.0 * SLOW, latencies)


# --- links under the data root ---------------------------------------------------------------

class LinksTest(SecurityCase):
    @classmethod
    def setUpClass(cls):
        cls.dl = DlServer()
        cls.addClassCleanup(cls.dl.stop)
        cls.size = 256 * 1024
        names = ("p.gguf", "l.gguf", "j.gguf", "d.gguf")
        cls.sha = {n: cls.dl.add_random(n, cls.size) for n in names}
        models = [model(f"ln-{n[0]}", cls.dl.url(n), cls.sha[n], cls.size) for n in names]
        cls.stack = Stack(gallery=gallery(models), server={"allow_http": True}, env=FAST_ENV)
        cls.addClassCleanup(cls.stack.stop)
        cls.outside = tempfile.mkdtemp(prefix="mg-outside-")
        cls.addClassCleanup(shutil.rmtree, cls.outside, True)
        # The victims belong to the user the stack runs as (the service user when the tests
        # run as root): only the stack's refusal to follow a link keeps them unchanged.
        st = os.stat(cls.stack.path("jobs"))
        cls.owner = (st.st_uid, st.st_gid)
        os.chown(cls.outside, *cls.owner)

    def victim(self, name, text=b"precious, outside the data root\n"):
        path = os.path.join(self.outside, name)
        with open(path, "wb") as f:
            f.write(text)
        os.chown(path, *self.owner)
        return path, text

    def assertUnchanged(self, path, text):
        with open(path, "rb") as f:
            self.assertEqual(f.read(), text, f"{path} was changed")

    def install(self, mid, timeout=30):
        s = self.stack
        r = s.post(f"/api/models/gallery/{mid}/install")
        self.assertJsonAnswer(r, 202)
        job_id = r.json["job_id"]
        return job_id, wait_until(
            lambda: (lambda j: j if j["status"] in ("installed", "failed", "cancelled") else None)(
                s.get(f"/api/models/jobs/{job_id}").json), timeout * SLOW, what=f"{mid} ends")

    def test_link_at_the_partial(self):
        s = self.stack
        target, text = self.victim("partial-target")
        part = s.path("models", ".partial", "ln-p.gguf.part")
        # the meta names this very download, so the partial would be resumed
        with open(part + ".meta", "w") as f:
            json.dump({"url": self.dl.url("p.gguf"), "checksum": "sha256:" + self.sha["p.gguf"]}, f)
        os.symlink(target, part)
        _, job = self.install("ln-p")
        self.assertEqual(job["status"], "installed", job)
        self.assertUnchanged(target, text)
        self.assertEqual(file_sha256(s.path("models", "llm", "ln-p.gguf")), self.sha["p.gguf"])
        self.assertIn("is a symbolic link; refusing to follow it", s.log("installer"))

    def test_link_at_the_model_file(self):
        s = self.stack
        target, text = self.victim("model-target")
        final = s.path("models", "llm", "ln-l.gguf")
        os.symlink(target, final)
        _, job = self.install("ln-l")
        self.assertEqual(job["status"], "installed", job)
        self.assertUnchanged(target, text)
        self.assertFalse(os.path.islink(final))
        self.assertEqual(file_sha256(final), self.sha["l.gguf"])
        # deleting a model whose file is a link removes the link, never the target
        link2 = s.path("models", "llm", "ln-x.gguf")
        os.symlink(target, link2)
        r = s.delete("/api/models/ln-x")
        self.assertJsonAnswer(r, 200)
        self.assertFalse(os.path.lexists(link2))
        self.assertUnchanged(target, text)

    def test_link_at_a_job_file(self):
        s = self.stack
        self.dl.control(throttle=64 * 1024)  # ~4 s: time to plant the link
        try:
            r = s.post("/api/models/gallery/ln-j/install")
            self.assertJsonAnswer(r, 202)
            job_id = r.json["job_id"]
            path = s.path("jobs", f"{job_id}.json")
            with open(path, "rb") as f:
                target, text = self.victim("job-target", f.read())
            os.symlink(target, path + ".link")
            os.replace(path + ".link", path)  # atomic: the installer may be saving the job
            job = wait_until(lambda: (lambda j: j if j["status"] in ("installed", "failed")
                                      else None)(s.get(f"/api/models/jobs/{job_id}").json),
                             30 * SLOW, what="ln-j ends")
        finally:
            self.dl.control(throttle=0)
        self.assertEqual(job["status"], "installed", job)
        self.assertUnchanged(target, text)
        self.assertFalse(os.path.islink(path))

    def test_linked_partial_folder(self):
        s = self.stack
        outdir = os.path.join(self.outside, "partials")
        os.mkdir(outdir)
        os.chown(outdir, *self.owner)
        pdir = s.path("models", ".partial")
        saved = pdir + ".saved"
        os.rename(pdir, saved)
        os.symlink(outdir, pdir)
        try:
            _, job = self.install("ln-d")
        finally:
            os.unlink(pdir)
            os.rename(saved, pdir)
        self.assertEqual(job["status"], "failed", job)
        self.assertIn("symbolic link", job["error"])
        self.assertEqual(os.listdir(outdir), [])
        self.assertFalse(os.path.exists(s.path("models", "llm", "ln-d.gguf")))


# --- settings, logs, secrets -----------------------------------------------------------------

class SettingsLogsSecretsTest(SecurityCase):
    def test_overlong_settings_keep_the_installer_up(self):
        dl = DlServer()
        self.addCleanup(dl.stop)
        sha = dl.add_random("o.gguf", 8192)
        g = gallery([model("ov-a", dl.url("o.gguf"), sha, 8192)])
        with Stack(gallery=g, server={"allow_http": True}, env=FAST_ENV) as s:
            pid = s.pid("installer")
            ids = [m["id"] for m in s.gallery().json["models"]]
            for bad, words in (({"galleries": [{"name": "big", "path": "p" * 5000}]},
                                ("galleries[0]", "1024")),
                               ({"galleries": [{"name": "u", "url": "https://x/" + "u" * 3000}]},
                                ("galleries[0]", "2048")),
                               ({"api_token": "t" * 300}, ("api_token", "256")),
                               ({"server_names": ["bad name"]}, ("server_names",))):
                with self.subTest(bad=list(bad)):
                    s.write_json("config/server.json", dict(bad, allow_http=True))
                    wait_until(lambda: all(w in s.log("installer").split("keeping the previous "
                                                                         "settings")[-1]
                                           for w in words), 10 * SLOW,
                               what=f"a readable error naming {words}")
                    self.assertTrue(mgtest.alive(pid), "the installer died")
                    self.assertEqual(s.get("/api/models/health").json["installer"], "running")
                    self.assertEqual([m["id"] for m in s.gallery().json["models"]], ids)
                    self.assertRefused(s.post("/api/models/gallery/ov-a/install"), 503,
                                       "config_unavailable")
            s.write_json("config/server.json", {"allow_http": True})

            def accepted():
                r = s.post("/api/models/gallery/ov-a/install")
                return r.json if r.status == 202 else None
            job = wait_until(accepted, 5, what="installs accepted again")
            wait_until(lambda: s.get(f"/api/models/jobs/{job['job_id']}").json["status"]
                       == "installed", 30 * SLOW, what="ov-a installed")
            self.assertEqual(s.pid("installer"), pid)
            self.assertNotIn("Aborted", s.log("installer"))

    def test_newline_in_ids_never_forges_a_log_line(self):
        forged = "2026-01-01T00:00:00Z [info] mg-installer[1]: job 0123456789abcdef: evil installed"
        g = gallery([{"id": "ok-model", "name": "ok", "checksum": "sha256:" + "0" * 64,
                      "downloadUrl": "https://example.com/ok.gguf", "sizeGb": 1},
                     {"id": "evil\n" + forged, "name": "evil\r\n" + forged,
                      "checksum": "sha256:" + "0" * 64,
                      "downloadUrl": "https://example.com/x\n" + forged, "sizeGb": 1}])
        with Stack(gallery=g) as s:
            self.assertEqual([m["id"] for m in s.gallery().json["models"]], ["ok-model"])
            s.search({"query": "ok"})
            wait_until(lambda: "evil\\n2026-01-01T00:00:00Z" in s.logs(), 5,
                       what="the escaped id in a log")
            for name in ("fcgi", "installer"):
                for line in s.log(name).splitlines():
                    with self.subTest(log=name, line=line[:80]):
                        self.assertRegex(line, LOG_LINE)
                        self.assertFalse(line.startswith(forged[:20]))

    def test_secrets_never_shown(self):
        dl = DlServer()
        self.addCleanup(dl.stop)
        sha = dl.add_random("s.gguf", 4096)
        gal = gallery([model("sec-s", f"http://u:pw-hunter3@127.0.0.1:{dl.port}/missing.gguf"
                             f"?sig=hunter4", sha, 4096)])
        with open(os.path.join(dl.dir, "gallery.json"), "w") as f:
            json.dump(gal, f)
        url = f"http://user:secret1@127.0.0.1:{dl.port}/gallery.json?token=hunter2"
        with Stack(gallery="gallery_it.json", env=FAST_ENV,
                   server={"gallery_url": url, "allow_http": True}) as s:
            wait_until(lambda: [m["id"] for m in s.gallery().json["models"]] == ["sec-s"], 30,
                       what="the CDN gallery served")
            st = s.get("/api/models/gallery/status")
            self.assertJsonAnswer(st, 200)
            src = st.json["sources"][0]
            self.assertEqual(src["url"], f"http://***@127.0.0.1:{dl.port}/gallery.json?***")
            r = s.post("/api/models/gallery/sec-s/install")
            job_id = self.assertJsonAnswer(r, 202)["job_id"]
            with WebSocket("127.0.0.1", s.port, "/api/models/ws/progress") as ws:
                job = wait_until(lambda: (lambda j: j if j["status"] == "failed" else None)(
                    s.get(f"/api/models/jobs/{job_id}").json), 30 * SLOW, what="the job fails")
                msgs = "\n".join(ws.messages(1.0))
            self.assertIn(f"http://***@127.0.0.1:{dl.port}/missing.gguf?***", job["error"])
            # a broken source: its error names the URL, hidden as well
            s.write_json("config/server.json", {"gallery_url": url.replace("gallery.json",
                                                                            "gone.json"),
                                                "allow_http": True})
            wait_until(lambda: s.get("/api/models/gallery/status").json["sources"][0]
                       .get("last_error"), 30, what="the source's error")
            shown = [st.body.decode(), s.get("/api/models/gallery/status").body.decode(),
                     s.get("/api/models/jobs").body.decode(), json.dumps(job), msgs,
                     s.log("installer"), s.log("fcgi"), s.log("nginx-error")]
            for secret in ("secret1", "hunter2", "hunter3", "hunter4", "pw-"):
                for i, text in enumerate(shown):
                    with self.subTest(secret=secret, where=i):
                        self.assertNotIn(secret, text)
            self.assertIn("***@127.0.0.1", s.log("installer"))


if __name__ == "__main__":
    mgtest.main()
