#!/usr/bin/env python3
"""test_deploy.py - deploy/up and deploy/down: pid files, sockets and logs under run/, a
re-run restarts cleanly, two roots side by side on two ports, down stops that root's
processes by pid and nothing else, failures are reported and leave nothing running, the
FastCGI workers are replaced when one dies, nginx keeps answering JSON (and the gallery) when
mg-fcgi is gone, and nchan delivers progress messages to WebSocket and EventSource clients."""

import json
import os
import signal
import socket
import subprocess
import time

import mgtest
from mgtest import (REPO, SharedStackTestCase, Stack, StackTestCase, alive, free_port, proc_comm, proc_stat,
                    session_members, wait_until)
from wsclient import WebSocket

# The processes of a root that run until they are stopped.
LONG_LIVED = {"runsvdir", "runsv", "nginx", "mg-fcgi", "mg-installer"}


def children(pid):
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st and st[1] == pid and st[0] not in ("Z", "X"):
                out.append(int(name))
    return out


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def run_deploy(script, root, port, bin_dir=None, timeout=60):
    env = dict(os.environ, MG_ROOT=root, MG_PORT=str(port),
               MG_BIN_DIR=bin_dir or mgtest.bin_dir())
    p = subprocess.run([os.path.join(REPO, "deploy", script)], env=env,
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace")


class DeployTest(StackTestCase):
    def test_up_layout_and_down(self):
        s = Stack(gallery="gallery_it.json")
        try:
            self.assertIn(f"http://127.0.0.1:{s.port}/", s.up_output)
            run = s.path("run")
            for name in ("nginx.pid", "fcgi.pid", "installer.pid", "supervisor.pid", "nginx.conf",
                         "nginx-error.log", "fcgi.log", "installer.log", "supervisor.log"):
                self.assertTrue(os.path.isfile(os.path.join(run, name)), name)
            for name in ("fcgi.sock", "fcgi-bulk.sock", "nchan.sock"):
                self.assertTrue(os.path.exists(os.path.join(run, name)), name)
            for d in ("config", "cache", "models/llm", "models/.partial", "jobs"):
                self.assertTrue(os.path.isdir(s.path(d)), d)
            self.assertEqual(proc_comm(s.pid("nginx")), "nginx")
            self.assertEqual(proc_comm(s.pid("fcgi")), "mg-fcgi")
            self.assertEqual(proc_comm(s.pid("installer")), "mg-installer")
            self.assertEqual(proc_comm(s.pid("supervisor")), "runsvdir")
            # runit runs each daemon from its service directory under run/sv
            for name, svc in (("nginx", "nginx"), ("fcgi", "fcgi"), ("installer", "installer")):
                self.assertEqual(os.readlink(f"/proc/{s.pid(name)}/cwd"),
                                 os.path.join(run, "sv", svc), name)
            self.assertTrue(children(s.pid("nginx")), "nginx has no workers")
            self.assertTrue(children(s.pid("fcgi")), "mg-fcgi has no workers")
            # only 127.0.0.1 listens; the rendered config names this root only
            with open(os.path.join(run, "nginx.conf")) as f:
                conf = f.read()
            self.assertNotIn("@MG_", conf)
            self.assertIn(f"listen 127.0.0.1:{s.port};", conf)
            pids = set(s.record_pids())
            self.assertGreaterEqual(len(pids), 5)
        finally:
            s.stop()  # asserts that every pid is gone
        self.assertFalse(port_open(s.port))

    def test_rerun_restarts_cleanly(self):
        with Stack(gallery="gallery_it.json") as s:
            old = {n: s.pid(n) for n in ("supervisor", "nginx", "fcgi", "installer")}
            old_all = set(s.record_pids())
            out = s.start()
            self.assertIn(f"http://127.0.0.1:{s.port}/", out)
            new = {n: s.pid(n) for n in ("supervisor", "nginx", "fcgi", "installer")}
            for n in old:
                self.assertNotEqual(old[n], new[n], n)
            for p in old_all:
                self.assertFalse(alive(p), f"old process {p} ({proc_comm(p)}) still runs")
            body = self.assertJsonAnswer(s.get("/api/models/health"), 200)
            self.assertEqual({k: body[k] for k in ("status", "installer", "gallery_models")},
                             {"status": "ok", "installer": "running", "gallery_models": 15})
            for name in ("supervisor", "nginx", "fcgi", "installer"):
                self.assertEqual(body["processes"][name]["status"], "running", body)
                self.assertEqual(body["processes"][name]["pid"], new[name])

    def test_two_roots_side_by_side(self):
        small = mgtest.load_fixture("gallery_it.json")
        small["models"] = [m for m in small["models"]
                           if isinstance(m, dict) and m["id"] in ("minimal-model", "starcoder2-3b")]
        a = Stack(gallery="gallery_it.json")
        b = Stack(gallery=small)
        try:
            self.assertNotEqual(a.port, b.port)
            self.assertEqual(a.get("/api/models/health").json["gallery_models"], 15)
            self.assertEqual(b.get("/api/models/health").json["gallery_models"], 2)
            self.assertEqual(len(b.gallery().json["models"]), 2)
            self.assertEqual(len(a.gallery().json["models"]), 15)
            # A's daemons and their supervisors; helpers that end on their own (mg-socket-mode,
            # sleep) may end while B stops.
            a_pids = {p: proc_comm(p) for p in a.record_pids()}
            a_daemons = {p: c for p, c in a_pids.items() if c in LONG_LIVED}
            self.assertEqual(LONG_LIVED, set(a_daemons.values()), a_pids)
            b.stop()
            for p, comm in a_daemons.items():
                self.assertTrue(alive(p), f"stopping root B stopped {p} ({comm}) of A")
            self.assertEqual(a.get("/api/models/health").status, 200)
            self.assertFalse(port_open(b.port))
        finally:
            b.stop()
            a.stop()

    def test_down_without_stack(self):
        root = Stack(gallery=None, start=False)
        try:
            for _ in range(2):
                rc, out = run_deploy("down", root.root, root.port)
                self.assertEqual(rc, 0, out)
        finally:
            root.stop()

    def test_down_ignores_foreign_pids(self):
        # pid files that name processes which are not ours are left alone
        root = Stack(gallery=None, start=False)
        sleeper = subprocess.Popen(["sleep", "30"])
        try:
            root.write_file("run/nginx.pid", f"{sleeper.pid}\n")
            root.write_file("run/fcgi.pid", f"{os.getpid()}\n")
            root.write_file("run/installer.pid", "999999999\n")
            rc, out = run_deploy("down", root.root, root.port)
            self.assertEqual(rc, 0, out)
            self.assertIsNone(sleeper.poll(), "deploy/down killed an unrelated process")
        finally:
            sleeper.kill()
            sleeper.wait()
            root.stop()

    def test_up_fails_cleanly_on_busy_port(self):
        busy = socket.socket()
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        root = Stack(gallery="gallery_it.json", port=port, start=False)
        try:
            rc, out = run_deploy("up", root.root, port)
            self.assertNotEqual(rc, 0, out)
            self.assertIn("error", out.lower())
            for n in ("nginx", "fcgi", "installer"):
                pid = root.pid(n)
                self.assertFalse(pid and alive(pid) and proc_comm(pid) in
                                 ("nginx", "mg-fcgi", "mg-installer"), f"{n} left running")
        finally:
            busy.close()
            root.stop()

    def test_up_fails_without_binaries(self):
        root = Stack(gallery="gallery_it.json", start=False)
        empty = root.path("nobin")
        os.makedirs(empty)
        try:
            rc, out = run_deploy("up", root.root, root.port, bin_dir=empty)
            self.assertNotEqual(rc, 0, out)
            self.assertIn("mg-fcgi", out)
            self.assertFalse(port_open(root.port))
        finally:
            root.stop()

    def test_fcgi_worker_replaced(self):
        with Stack(gallery="gallery_it.json") as s:
            master = s.pid("fcgi")
            workers = children(master)
            self.assertTrue(workers)
            os.kill(workers[0], signal.SIGKILL)
            for _ in range(30):
                r = s.search({"query": "qwen"})
                self.assertEqual(r.status, 200, r)
            wait_until(lambda: len(children(master)) == len(workers) and
                       workers[0] not in children(master), 3.0, what="a replacement worker")
            s.record_pids()

    def test_backend_down_answers_json(self):
        with Stack(gallery="gallery_it.json") as s:
            fcgi = s.pid("fcgi")
            workers = children(fcgi)
            s.record_pids()
            s.sv("down", "fcgi")  # the supervisor stops it and leaves it down
            wait_until(lambda: not any(alive(p) for p in [fcgi] + workers), 10.0,
                       what="mg-fcgi gone")
            r = s.get("/api/models/health")
            self.assertIn(r.status, (502, 503))
            self.assertError(r, r.status, "backend_unavailable", None)
            r = s.search({"query": "qwen"})
            self.assertError(r, r.status, "backend_unavailable", None)
            # nginx serves the cached gallery on its own
            r = s.gallery()
            self.assertEqual(self.assertJsonAnswer(r, 200)["version"], 1)
            self.assertEqual(len(r.json["models"]), 15)

    def test_installer_down_in_health(self):
        with Stack(gallery="gallery_it.json") as s:
            inst = s.pid("installer")
            s.sv("down", "installer")
            wait_until(lambda: not alive(inst), 5.0, what="mg-installer to exit")
            body = wait_until(lambda: (lambda b: b if b.get("installer") == "down" else None)(
                s.get("/api/models/health").json), 3.0, what="health saying installer down")
            self.assertEqual(body["status"], "ok")
            self.assertEqual(body["processes"]["installer"], {"status": "down", "pid": None})
            s.sv("up", "installer")
            wait_until(lambda: s.get("/api/models/health").json["installer"] == "running", 5.0,
                       what="health saying installer running")
            self.assertNotEqual(s.pid("installer"), inst)
            s.record_pids()


class ProgressChannelTest(SharedStackTestCase):
    """The nchan channel: the installer's publisher socket to every subscriber."""

    def msg(self, n, status="downloading"):
        return {"model_id": "minimal-model", "job_id": f"{n:016x}", "status": status,
                "progress": n, "downloaded": n * 10, "total": 1000,
                "bytes_per_second": 100, "error": None}

    def test_websocket_receives_published(self):
        s = self.stack
        with WebSocket("127.0.0.1", s.port, "/api/models/ws/progress") as ws:
            ws.messages(0.3)  # whatever the buffer replays
            for n in (1, 2, 3):
                self.assertIn(s.publish(self.msg(n)), (201, 202))
            got = [json.loads(ws.recv(5)) for _ in range(3)]
            self.assertEqual(got, [self.msg(1), self.msg(2), self.msg(3)])

    def test_two_subscribers_both_receive(self):
        s = self.stack
        with WebSocket("127.0.0.1", s.port, "/api/models/ws/progress") as a, \
                WebSocket("127.0.0.1", s.port, "/api/models/ws/progress") as b:
            a.messages(0.3)
            b.messages(0.3)
            s.publish(self.msg(7))
            self.assertEqual(json.loads(a.recv(5)), self.msg(7))
            self.assertEqual(json.loads(b.recv(5)), self.msg(7))

    def test_late_subscriber_gets_recent_messages(self):
        s = self.stack
        for n in range(100, 180):
            s.publish(self.msg(n))
        with WebSocket("127.0.0.1", s.port, "/api/models/ws/progress") as ws:
            got = [json.loads(m) for m in ws.messages(1.0)]
        self.assertTrue(got, "a new subscriber got no recent message")
        # the buffer (nchan_message_buffer_length 64) is replayed oldest first, newest last
        self.assertLessEqual(len(got), 64)
        self.assertEqual(got[-1], self.msg(179))
        self.assertEqual(got, [self.msg(n) for n in range(180 - len(got), 180)])

    def test_eventsource(self):
        s = self.stack
        with socket.create_connection(("127.0.0.1", s.port), timeout=5) as c:
            c.sendall(f"GET /api/models/ws/progress HTTP/1.1\r\nHost: 127.0.0.1:{s.port}\r\n"
                      "Accept: text/event-stream\r\n\r\n".encode())
            time.sleep(0.3)
            s.publish(self.msg(42))
            buf = b""
            deadline = time.monotonic() + 5
            want = json.dumps(self.msg(42)).encode()
            while want not in buf and time.monotonic() < deadline:
                chunk = c.recv(65536)
                if not chunk:
                    break
                buf += chunk
        self.assertIn(b"text/event-stream", buf)
        self.assertIn(b"data: " + want, buf)


if __name__ == "__main__":
    mgtest.main()
