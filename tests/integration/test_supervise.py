#!/usr/bin/env python3
"""test_supervise.py - supervision (deploy/up runs the stack under runit): the kill matrix.
Under load (a background client doing requests all along) and during an install (a throttled
download from dlserver.py), each process is killed with SIGKILL in turn: nginx's master, an
nginx worker, mg-fcgi's master, an mg-fcgi worker, the runsv of each service, mg-installer.
Each time health reports every process running again within 5 s, each runsv of runsvdir
with one child (the service, or the run script watching the service a killed runsv left
running), nothing but those processes works in run/sv (no orphan survives), and no request
fails after that (a killed runsv never interrupts its service: runsvdir starts a new one
within its 5 s scan, and no request fails at all); the install
ends installed with the right SHA-256, and deploy/down leaves no process of the root alive.
Then runsvdir itself: killed, the services keep serving, health says so, and deploy/up and
deploy/down still find everything: the orphaned runsv, and nginx workers left holding the
port by a master killed while nothing supervised it."""

import os
import threading
import time

import mgtest
from mgtest import alive, proc_comm, proc_stat, request, wait_until
from test_deploy import children
from test_install import SLOW, InstallCase, MiB, model

MODEL = "it-supervised"
SIZE = 32 * MiB + 123
RECOVER_S = 5.0 * SLOW
# runsvdir looks for a dead runsv every 5 s; the service runs on meanwhile
RUNSV_RECOVER_S = 5.0 + 2.0 * SLOW
LOAD_PATHS = ("/api/models/health", "/api/models/gallery/search?query=it", "/api/models/jobs",
              "/api/models/gallery", "/")


class LoadClient(threading.Thread):
    """Requests in a loop, each on a new connection, remembering (start, end, path, outcome)."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.results = []
        self.stopping = threading.Event()

    def run(self):
        i = 0
        while not self.stopping.is_set():
            path = LOAD_PATHS[i % len(LOAD_PATHS)]
            i += 1
            t0 = time.monotonic()
            try:
                r = request(self.port, "GET", path, timeout=5)
                outcome = r.status if r.status != 200 or path == "/" else self.check(path, r)
            except Exception as e:  # noqa: BLE001 - a failed request is what is counted
                outcome = repr(e)
            self.results.append((t0, time.monotonic(), path, outcome))
            time.sleep(0.01)

    @staticmethod
    def check(path, r):
        body = r.json  # every answer under /api/ is JSON
        if path == "/api/models/health" and body.get("status") != "ok":
            return f"health {body}"
        return 200

    def failures_since(self, t):
        return [x for x in self.results if x[0] >= t and x[3] != 200]

    def stop(self):
        self.stopping.set()
        self.join(10)


class KillMatrixTest(InstallCase):
    @classmethod
    def setUpClass(cls):
        def models(dl):
            name = f"{MODEL}.gguf"
            return [model(MODEL, dl.url(name), dl.files[name][1], dl.files[name][0])]
        cls.start(models, {f"{MODEL}.gguf": SIZE}, env={"MG_WORKERS": "2"})

    def health(self):
        return self.assertJsonAnswer(self.stack.get("/api/models/health"), 200)

    def report(self):
        """Health's process report once the stack runs whole: every process running (nginx
        and mg-fcgi with their two workers each), every runsv of runsvdir with one child:
        its service, or the run script watching the service a killed runsv left running;
        and nothing else working in run/sv. None otherwise."""
        try:
            procs = self.health()["processes"]
        except (AssertionError, OSError):
            return None
        names = ("supervisor", "nginx", "fcgi", "installer")
        if any(procs.get(n, {}).get("status") != "running" for n in names):
            return None
        if len(procs["nginx"]["workers"]) != 2 or len(procs["fcgi"]["workers"]) != 2:
            return None
        runsvs = [c["pid"] for c in procs["supervisor"]["services"]]
        kids = [children(p) for p in runsvs]
        if len(runsvs) != 3 or any(len(k) != 1 for k in kids):
            return None
        expected = {procs[n]["pid"] for n in names} | set(runsvs) | {k[0] for k in kids}
        for n in ("nginx", "fcgi"):
            expected |= {c["pid"] for c in procs[n]["workers"]}
        if set(self.stack.sv_pids()) != expected:
            return None
        return procs

    def recover(self, killed, what, timeout):
        """Waits until the stack runs whole again without `killed`; returns (seconds, report)."""
        t0 = time.monotonic()

        def whole():
            procs = self.report()
            return procs if procs and killed not in self.stack.sv_pids() else None
        try:
            procs = wait_until(whole, timeout, 0.02, f"the stack whole again after {what}")
        except AssertionError as e:
            raise AssertionError(f"{e}\nhealth: {self.stack.get('/api/models/health').body}\n"
                                 f"run/sv: {[(p, proc_comm(p)) for p in self.stack.sv_pids()]}\n"
                                 f"{self.stack.diagnostics()}") from None
        self.stack.record_pids()
        return time.monotonic() - t0, procs

    def test_kill_matrix(self):
        s = self.stack
        procs = wait_until(self.report, RECOVER_S, 0.05, "the whole stack at start")
        self.dl.control(throttle=1 * MiB)
        job_id = self.post_install(MODEL)["job_id"]
        wait_until(lambda: self.partial_size(MODEL) > 0, 10 * SLOW, what="the download to start")
        load = LoadClient(s.port)
        load.start()
        self.addCleanup(load.stop)

        def runsv_of(name):
            return lambda p: proc_stat(p[name]["pid"])[1]
        victims = [
            ("nginx master", lambda p: p["nginx"]["pid"]),
            ("an nginx worker", lambda p: p["nginx"]["workers"][0]["pid"]),
            ("mg-fcgi master", lambda p: p["fcgi"]["pid"]),
            ("an mg-fcgi worker", lambda p: p["fcgi"]["workers"][0]["pid"]),
            ("runsv of nginx", runsv_of("nginx")),
            ("runsv of mg-fcgi", runsv_of("fcgi")),
            ("runsv of mg-installer", runsv_of("installer")),
            ("mg-installer", lambda p: p["installer"]["pid"]),
        ]
        times = {}
        for what, pick in victims:
            job = self.job(job_id)
            self.assertEqual(job["status"], "downloading", f"before killing {what}: {job}")
            if what == "mg-installer":
                self.dl.control(throttle=0)  # the resumed download may finish now
            pid = pick(procs)
            self.assertTrue(alive(pid), f"{what} {pid}")
            killed_at = time.monotonic()
            os.kill(pid, 9)
            runsv = what.startswith("runsv")
            times[what], procs = self.recover(pid, what, RUNSV_RECOVER_S if runsv else RECOVER_S)
            print(f"killed {what} ({pid}): whole again after {times[what]:.2f} s", flush=True)
            recovered_at = time.monotonic()
            time.sleep(0.5)  # requests after recovery
            # a killed runsv never interrupts its service: no request fails at all
            failed = load.failures_since(killed_at if runsv else recovered_at)
            self.assertEqual(failed, [], f"requests failed after recovering from {what}")

        job = self.wait_job(job_id, timeout=60)
        load.stop()
        self.assertInstalled(MODEL, f"{MODEL}.gguf", job)
        ok = sum(1 for x in load.results if x[3] == 200)
        self.assertGreater(ok, 50, "the background client got few answers")
        # after the last recovery every request succeeded
        self.assertEqual(load.failures_since(recovered_at), [])
        served = self.dl.path_stats(f"{MODEL}.gguf")["bytes"]
        self.assertLess(served, 1.5 * SIZE, "the restarts resumed the download (Range)")


class SupervisorKilledTest(InstallCase):
    """runsvdir itself killed: nothing restarts it under deploy/up (systemd does under the
    package), but the services keep running and serving, and up/down still work."""

    @classmethod
    def setUpClass(cls):
        cls.start(lambda dl: [], {})

    def test_runsvdir_killed(self):
        s = self.stack
        sup = s.pid("supervisor")
        runsvs = [p for p in s.sv_pids() if proc_comm(p) == "runsv"]
        self.assertEqual(len(runsvs), 3, runsvs)
        s.record_pids()
        os.kill(sup, 9)
        wait_until(lambda: not alive(sup), 5, what="runsvdir gone")
        body = wait_until(lambda: (lambda b: b if b["processes"]["supervisor"]["status"] == "down"
                                   else None)(self.assertJsonAnswer(s.get("/api/models/health"),
                                                                    200)), 5,
                          what="health saying the supervisor is down")
        for name in ("nginx", "fcgi", "installer"):
            self.assertEqual(body["processes"][name]["status"], "running", body)
        self.assertTrue(all(alive(p) for p in runsvs), "the runsv outlive runsvdir")
        # nothing supervises nginx now: its master killed, the workers keep the port
        master = body["processes"]["nginx"]["pid"]
        workers = [w["pid"] for w in body["processes"]["nginx"]["workers"]]
        os.kill(proc_stat(master)[1], 9)  # its runsv
        os.kill(master, 9)
        wait_until(lambda: not alive(master), 5, what="nginx's master gone")
        self.assertTrue(all(alive(w) for w in workers), "orphaned nginx workers")
        self.assertEqual(s.get("/api/models/health").status, 200)  # served by the orphans
        out = s.start()  # deploy/up stops the orphans, the runsv and their services
        self.assertIn("is up", out)
        for p in runsvs + workers:
            self.assertFalse(alive(p), f"{p} ({proc_comm(p)}) of the old stack still runs")
        body = self.assertJsonAnswer(s.get("/api/models/health"), 200)
        self.assertEqual(body["processes"]["supervisor"]["status"], "running", body)
        # and once more, with deploy/down (the harness checks that nothing is left)
        os.kill(s.pid("supervisor"), 9)


if __name__ == "__main__":
    mgtest.main()
