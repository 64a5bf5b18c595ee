#!/usr/bin/env python3
"""test_nodes.py - several nodes (issue 14): a real redis-server on a free 127.0.0.1 port and
two whole stacks ("a" and "b", their own data roots and ports) whose server.json names it in
redis_url, so that nchan keeps the progress channel in Redis.

- A WebSocket client on b receives the progress of an install running on a, ending
  installed, every message naming node a; and the other way round. Each node answers for
  itself: jobs, installed and health name it, and only the node that installed a model
  lists it.
- A new subscriber on either node gets the state of every active job of both nodes within
  a second, also after the buffer was pushed full by other messages; a node's copy of the
  channel keeps at most 65 messages (nchan 1.3.6 trims it only on a buffer-length change).
- Redis killed mid-install: the install goes on (its job file too), health says progress is
  unavailable, a new subscriber gets 503 progress_unavailable; Redis started again, the
  connected client gets progress again by itself and the install ends installed.
- deploy/nginx/balancer.conf.example in front of both: any call to any node, a call pinned
  by X-MG-Node or by /node/NAME/, the progress socket through it; a pinned call that reaches
  another node is refused with 421 wrong_node.

The redis-server and the balancer's nginx are started here and stopped by their pids."""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import mgtest
from mgtest import REPO, Stack, StackTestCase, free_port, request, wait_until
from test_install import FAST_ENV, SLOW, DlServer, MiB, file_sha256, gallery, model
from wsclient import WebSocket, WebSocketError

MODELS = {  # model id -> file size
    "it-n-a1": 2 * MiB, "it-n-b1": 2 * MiB, "it-n-run-a": 4 * MiB, "it-n-queued-a": 256 * 1024,
    "it-n-run-b": 4 * MiB, "it-n-outage": 6 * MiB, "it-n-lb": 1 * MiB,
}


class RedisServer:
    """redis-server on a free 127.0.0.1 port without persistence, in its own process."""

    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="mg-redis-")
        self.proc = None
        self.start()

    def start(self):
        log = open(os.path.join(self.dir, "redis.log"), "ab")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--daemonize", "no"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_until(self.ping, 10, what=f"redis-server on port {self.port}")

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self):
        """SIGKILL, as a crash: nothing is saved, clients lose their connections."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class Balancer:
    """nginx with deploy/nginx/balancer.conf.example, its node addresses and port filled in."""

    def __init__(self, port, node_ports):
        self.port = port
        self.dir = tempfile.mkdtemp(prefix="mg-lb-")
        with open(os.path.join(REPO, "deploy", "nginx", "balancer.conf.example")) as f:
            site = f.read()
        site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
        for name, addr in (("a", "10.0.0.1:8080"), ("b", "10.0.0.2:8080")):
            self.assert_in(addr, site)
            site = site.replace(addr, f"127.0.0.1:{node_ports[name]}")
        d = self.dir
        with open(os.path.join(d, "site.conf"), "w") as f:
            f.write(site)
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write(f"daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\n"
                    f"error_log {d}/error.log warn;\nevents {{ worker_connections 256; }}\n"
                    f"http {{\n access_log off;\n client_body_temp_path {d}/cb;\n"
                    f" proxy_temp_path {d}/px;\n fastcgi_temp_path {d}/fc;\n"
                    f" uwsgi_temp_path {d}/uw;\n scgi_temp_path {d}/sc;\n"
                    f" include {d}/site.conf;\n}}\n")
        self.proc = subprocess.Popen(["nginx", "-e", f"{d}/error.log", "-p", d + "/", "-c",
                                      f"{d}/nginx.conf"], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_until(self.answers, 10, what=f"the balancer on port {port}")

    @staticmethod
    def assert_in(part, text):
        if part not in text:
            raise AssertionError(f"balancer.conf.example no longer holds {part}")

    def answers(self):
        if self.proc.poll() is not None:
            with open(os.path.join(self.dir, "error.log")) as f:
                raise AssertionError(f"the balancer's nginx exited:\n{f.read()}")
        try:
            return request(self.port, "GET", "/api/models/health", timeout=2).status == 200
        except OSError:
            return False

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)  # nginx's master stops its workers
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class NodesTest(StackTestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = RedisServer()
        cls.addClassCleanup(cls.redis.stop)
        cls.dl = DlServer()
        cls.addClassCleanup(cls.dl.stop)
        for mid, size in MODELS.items():
            cls.dl.add_random(f"{mid}.gguf", size)
        models = [model(mid, cls.dl.url(f"{mid}.gguf"), cls.dl.files[f"{mid}.gguf"][1], size)
                  for mid, size in MODELS.items()]
        cls.lb_port = free_port()
        cls.nodes = {}
        for name in ("a", "b"):
            server = {"allow_http": True, "node_name": name, "max_parallel_downloads": 1,
                      "redis_url": f"redis://127.0.0.1:{cls.redis.port}",
                      "server_names": [f"127.0.0.1:{cls.lb_port}"]}
            cls.nodes[name] = Stack(gallery=gallery(models), server=server, env=FAST_ENV)
            cls.addClassCleanup(cls.nodes[name].stop)
        cls.a, cls.b = cls.nodes["a"], cls.nodes["b"]

    def setUp(self):
        self.dl.defaults()

    # --- helpers ---

    def ws(self, stack):
        return WebSocket("127.0.0.1", stack.port, "/api/models/ws/progress")

    def install(self, stack, mid, headers=None):
        r = stack.post(f"/api/models/gallery/{mid}/install", headers=headers)
        body = self.assertJsonAnswer(r, 202)
        self.assertEqual((body["model_id"], body["node"]), (mid, stack_node(stack)), body)
        return body["job_id"]

    def job(self, stack, job_id):
        return self.assertJsonAnswer(stack.get(f"/api/models/jobs/{job_id}"), 200)

    def wait_job(self, stack, job_id, statuses=("installed", "failed", "cancelled"), timeout=30):
        return wait_until(lambda: (lambda j: j if j["status"] in statuses else None)(
            self.job(stack, job_id)), timeout * SLOW, 0.05, f"job {job_id} in {statuses}")

    def messages_until(self, ws, job_id, statuses, timeout=30, seen=None):
        """Messages of `job_id` from `ws` up to one whose status is in `statuses`."""
        out = [] if seen is None else seen
        deadline = time.monotonic() + timeout * SLOW
        while not out or out[-1]["status"] not in statuses:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {statuses} message of {job_id} in time; got "
                                     f"{[m['status'] for m in out]}\n{self.a.diagnostics()}\n"
                                     f"{self.b.diagnostics()}")
            try:
                m = json.loads(ws.recv(left))
            except TimeoutError:
                continue
            if m.get("job_id") == job_id:
                out.append(m)
        return out

    def assertInstalledOn(self, stack, other, mid, job_id):
        """The model is installed on `stack` alone; each node answers for itself."""
        size, digest = self.dl.files[f"{mid}.gguf"]
        path = stack.path("models", "llm", f"{mid}.gguf")
        self.assertEqual(file_sha256(path), digest)
        self.assertFalse(os.path.exists(other.path("models", "llm", f"{mid}.gguf")))
        mine = self.assertJsonAnswer(stack.get("/api/models/installed"), 200)
        self.assertEqual(mine["node"], stack_node(stack))
        self.assertEqual(mine["models"][mid]["size"], size)
        theirs = self.assertJsonAnswer(other.get("/api/models/installed"), 200)
        self.assertEqual(theirs["node"], stack_node(other))
        self.assertNotIn(mid, theirs["models"])
        job = self.job(stack, job_id)
        self.assertEqual((job["status"], job["node"]), ("installed", stack_node(stack)), job)
        self.assertError(other.get(f"/api/models/jobs/{job_id}"), 404, "job_not_found",
                         "job_id")
        page = self.assertJsonAnswer(other.get("/api/models/jobs"), 200)
        self.assertEqual(page["node"], stack_node(other))
        self.assertNotIn(job_id, [j["job_id"] for j in page["jobs"]])
        self.assertTrue(all(j["node"] == stack_node(other) for j in page["jobs"]), page)

    def cross_install(self, source, watcher, mid):
        with self.ws(watcher) as ws:
            job_id = self.install(source, mid)
            msgs = self.messages_until(ws, job_id, ("installed", "failed", "cancelled"))
        self.assertEqual(msgs[-1]["status"], "installed", msgs[-1])
        self.assertEqual({m["node"] for m in msgs}, {stack_node(source)}, msgs)
        self.assertEqual({m["model_id"] for m in msgs}, {mid})
        self.assertEqual(msgs[-1]["progress"], 100)
        self.assertEqual(msgs[-1]["downloaded"], MODELS[mid])
        self.assertInstalledOn(source, watcher, mid, job_id)

    # --- tests ---

    def test_health_names_the_node_and_the_store(self):
        for name, stack in self.nodes.items():
            h = self.assertJsonAnswer(stack.get("/api/models/health"), 200)
            self.assertEqual(h["node"], name)
            self.assertEqual(h["progress"], {"store": "redis", "status": "ok"}, h)
            with open(stack.path("run", "nginx.conf")) as f:
                conf = f.read()
            # redis_url may hold a password: only the nginx master reads the file
            self.assertEqual(os.stat(stack.path("run", "nginx.conf")).st_mode & 0o777, 0o600)
            self.assertIn(f'nchan_redis_server "redis://127.0.0.1:{self.redis.port}";', conf)
            self.assertEqual(conf.count("nchan_redis_pass mg_progress_redis;"), 3)
            self.assertNotRegex(conf, r"(?m)# MG-(REDIS|MEMORY)$")
        # without redis_url the same template has no Redis at all
        out = subprocess.run([os.path.join(REPO, "deploy", "nginx", "render"), "/tmp/x", "1",
                              "/w", "2"], stdout=subprocess.PIPE, check=True).stdout.decode()
        self.assertNotIn("nchan_redis", out)
        self.assertNotIn("/pub/progress/alt", out)
        self.assertNotRegex(out, r"(?m)# MG-(REDIS|MEMORY)$")
        self.assertIn("auth_request off;", out)

    def test_b_sees_an_install_on_a(self):
        self.cross_install(self.a, self.b, "it-n-a1")

    def test_a_sees_an_install_on_b(self):
        self.cross_install(self.b, self.a, "it-n-b1")

    def test_new_subscriber_gets_every_nodes_active_jobs(self):
        self.dl.control(throttle=256 * 1024)  # 16 s: running for the whole test
        jobs = {}
        # the channel exists before b subscribes (nchan 1.3.6 sets the buffer length of b's
        # copy only when a later message changes it: see nginx.conf.in)
        self.assertIn(self.a.publish({"model_id": "it-n-filler", "job_id": "f", "node": "x",
                                      "status": "installed"}), (201, 202))
        with self.ws(self.b) as early:  # b keeps a copy of the channel from now on
            jobs["it-n-run-a"] = (self.install(self.a, "it-n-run-a"), "a")
            jobs["it-n-run-b"] = (self.install(self.b, "it-n-run-b"), "b")
            wait_until(lambda: self.job(self.a, jobs["it-n-run-a"][0])["status"] ==
                       "downloading", 10 * SLOW, what="a's download")
            jobs["it-n-queued-a"] = (self.install(self.a, "it-n-queued-a"), "a")
            # 150 other messages push the buffer (64) full many times over
            for i in range(150):
                self.assertIn(self.a.publish({"model_id": "it-n-filler", "job_id": f"f{i}",
                                              "status": "installed", "node": "x"}), (201, 202))
            early.messages(0.3)
            try:
                for stack in (self.b, self.a):
                    seen, fillers, took = self.first_states(stack, jobs, 1.0 * SLOW)
                    missing = {mid for mid, (j, _) in jobs.items() if j not in seen}
                    self.assertFalse(missing, f"node {stack_node(stack)}: no state of {missing}"
                                              f" within {took:.2f} s")
                    for mid, (job_id, node) in jobs.items():
                        m = seen[job_id]
                        self.assertEqual((m["model_id"], m["node"]), (mid, node), m)
                    self.assertEqual(seen[jobs["it-n-queued-a"][0]]["status"], "queued")
                    self.assertIn(seen[jobs["it-n-run-b"][0]]["status"], ("downloading",
                                                                          "verifying"))
                    self.assertLessEqual(fillers, 65, "a node replayed more than its buffer")
            finally:  # the queued job first: it must not start when the other one ends
                for mid, (job_id, node) in reversed(jobs.items()):
                    self.nodes[node].delete(f"/api/models/jobs/{job_id}")
                for mid, (job_id, node) in jobs.items():
                    self.wait_job(self.nodes[node], job_id, timeout=10)

    def first_states(self, stack, jobs, within):
        """The latest message of each job in `jobs` that a new subscriber of `stack` gets
        within `within` s, how many replayed fillers came with them (all that come in 0.3 s
        more), and how long it took to have every job."""
        want = {j for j, _ in jobs.values()}
        seen, fillers = {}, 0
        t0 = time.monotonic()
        took = None
        with self.ws(stack) as ws:
            end = t0 + within
            while time.monotonic() < end:
                try:
                    m = json.loads(ws.recv(max(0.01, end - time.monotonic())))
                except TimeoutError:
                    break
                fillers += m.get("model_id") == "it-n-filler"
                seen[m.get("job_id")] = m
                if took is None and want <= set(seen):
                    took = time.monotonic() - t0
                    end = min(end, time.monotonic() + 0.3)
        return seen, fillers, took if took is not None else time.monotonic() - t0

    def test_redis_down_then_back(self):
        mid = "it-n-outage"
        self.dl.control(throttle=768 * 1024)  # 8 s
        with self.ws(self.b) as ws:
            job_id = self.install(self.a, mid)
            msgs = self.messages_until(ws, job_id, ("downloading",), timeout=10)
            self.redis.kill()
            try:
                for stack in (self.a, self.b):
                    wait_until(lambda: self.progress_of(stack)["status"] == "unavailable",
                               5 * SLOW, what=f"node {stack_node(stack)} to tell")
                p = self.progress_of(self.b)
                self.assertIn("Redis", p["message"])
                # a new subscriber hears why, in JSON, instead of an empty 503
                r = self.b.get("/api/models/ws/progress", {"Accept": "text/event-stream"})
                self.assertError(r, 503, "progress_unavailable", None)
                self.assertEqual(r.header("retry-after"), "1")
                with self.assertRaisesRegex(WebSocketError, " 503 "):
                    self.ws(self.b).close()
                # the install goes on: its job file moves
                before = self.job(self.a, job_id)
                self.assertEqual(before["status"], "downloading", before)
                wait_until(lambda: self.job(self.a, job_id)["downloaded"] >
                           before["downloaded"] + 256 * 1024, 5 * SLOW,
                           what="the download to go on without Redis")
            finally:
                self.redis.start()
            for stack in (self.a, self.b):
                wait_until(lambda: self.progress_of(stack)["status"] == "ok", 10 * SLOW,
                           what=f"node {stack_node(stack)} to get Redis back")
            # the client that stayed connected gets progress again by itself
            n = len(msgs)
            self.messages_until(ws, job_id, ("installed", "failed", "cancelled"), seen=msgs)
            after = msgs[n:]
        self.assertTrue(after, "no message after Redis came back")
        self.assertEqual(after[-1]["status"], "installed", after[-1])
        self.assertEqual({m["node"] for m in msgs}, {"a"})
        self.assertInstalledOn(self.a, self.b, mid, job_id)
        self.assertIn("cannot publish to nchan", self.a.log("installer"))
        self.assertIn("works again", self.a.log("installer"))

    def progress_of(self, stack):
        return self.assertJsonAnswer(stack.get("/api/models/health"), 200)["progress"]

    def test_balancer_pins_calls_to_a_node(self):
        lb = Balancer(self.lb_port, {n: s.port for n, s in self.nodes.items()})
        try:
            self.through_balancer(lb)
        finally:
            lb.stop()

    def through_balancer(self, lb):
        def get(path, headers=None):
            return request(lb.port, "GET", path, headers=headers)
        for name in ("a", "b"):
            self.assertEqual(get(f"/node/{name}/api/models/health").json["node"], name)
            for _ in range(3):
                self.assertEqual(get("/api/models/health", {"X-MG-Node": name}).json["node"],
                                 name)
        self.assertEqual({get("/api/models/health").json["node"] for _ in range(6)},
                         {"a", "b"}, "unpinned calls reach every node")
        mid = "it-n-lb"
        with WebSocket("127.0.0.1", lb.port, "/api/models/ws/progress") as ws:
            r = request(lb.port, "POST", f"/api/models/gallery/{mid}/install")
            body = self.assertJsonAnswer(r, 202)
            node, job_id = body["node"], body["job_id"]
            msgs = self.messages_until(ws, job_id, ("installed", "failed", "cancelled"))
        self.assertEqual(msgs[-1]["status"], "installed", msgs[-1])
        self.assertEqual({m["node"] for m in msgs}, {node})
        here, there = self.nodes[node], self.nodes["b" if node == "a" else "a"]
        for _ in range(3):
            job = self.assertJsonAnswer(get(f"/api/models/jobs/{job_id}", {"X-MG-Node": node}),
                                        200)
            self.assertEqual((job["job_id"], job["node"]), (job_id, node))
        # a call pinned to one node that reaches another changes nothing there
        self.assertError(there.delete(f"/api/models/{mid}", {"X-MG-Node": node}), 421,
                         "wrong_node", None)
        self.assertError(there.get("/api/models/health", {"X-MG-Node": node}), 421,
                         "wrong_node", None)
        self.assertTrue(os.path.exists(here.path("models", "llm", f"{mid}.gguf")))
        r = request(lb.port, "DELETE", f"/node/{node}/api/models/{mid}")
        self.assertEqual(self.assertJsonAnswer(r, 200), {"deleted": mid, "file_removed": True})
        self.assertFalse(os.path.exists(here.path("models", "llm", f"{mid}.gguf")))


def stack_node(stack):
    return stack.read_json("config/server.json")["node_name"]


if __name__ == "__main__":
    mgtest.main()
