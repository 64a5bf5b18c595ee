#!/usr/bin/env python3
"""test_progress_restart.py - a new progress subscriber learns the current state of every
active job (one downloading, two queued behind it with max_parallel_downloads 1) within 1 s:
at once from nchan's buffer, also once the download's own messages have pushed the queued
jobs' announcements out of the buffer of 64 (the installer sends them again first), and also
after nginx alone was restarted (its buffer lost), since the installer notices and
republishes its snapshot. The queued jobs are announced with a "queued" message of their
own."""

import json
import os
import time

import mgtest
from mgtest import wait_until
from test_install import SLOW, InstallCase, MiB, model

RUNNING = "it-pr-running"
QUEUED = ["it-pr-queued-1", "it-pr-queued-2"]


def restart_models(dl):
    out = []
    for mid in [RUNNING] + QUEUED:
        size, digest = dl.files[f"{mid}.gguf"]
        out.append(model(mid, dl.url(f"{mid}.gguf"), digest, size))
    return out


class ProgressRestartTest(InstallCase):
    @classmethod
    def setUpClass(cls):
        files = {f"{RUNNING}.gguf": 8 * MiB}
        files.update({f"{m}.gguf": 64 * 1024 for m in QUEUED})
        cls.start(restart_models, files, server={"max_parallel_downloads": 1})

    def setUp(self):
        super().setUp()
        self.dl.control(throttle=256 * 1024)  # 32 s: running for the whole test
        self.jobs = {RUNNING: self.post_install(RUNNING)["job_id"]}
        wait_until(lambda: self.partial_size(RUNNING) > 0, 10 * SLOW, what="the download")
        for mid in QUEUED:
            self.jobs[mid] = self.post_install(mid)["job_id"]
        self.assertEqual(self.job(self.jobs[QUEUED[-1]])["status"], "queued")

    def tearDown(self):  # the queued jobs first: none may start when the running one ends
        for job_id in reversed(self.jobs.values()):
            self.stack.delete(f"/api/models/jobs/{job_id}")
        for job_id in self.jobs.values():
            self.wait_job(job_id, timeout=10)

    def first_states(self, within):
        """The latest message of each job a new subscriber gets within `within` s (dict
        job_id -> message) and how long it took to have all of them."""
        want = set(self.jobs.values())
        seen = {}
        t0 = time.monotonic()
        with self.ws() as ws:
            while not want <= set(seen) and time.monotonic() - t0 < within:
                try:
                    m = json.loads(ws.recv(max(0.01, within - (time.monotonic() - t0))))
                except TimeoutError:
                    break
                seen[m.get("job_id")] = m
        return seen, time.monotonic() - t0

    def assertAllActive(self, seen, took):
        missing = {mid for mid, j in self.jobs.items() if j not in seen}
        self.assertFalse(missing, f"no state of {missing} within {took:.2f} s; got "
                                  f"{[(m.get('model_id'), m.get('status')) for m in seen.values()]}"
                                  f"\n{self.stack.diagnostics()}")
        self.assertIn(seen[self.jobs[RUNNING]]["status"], ("downloading", "verifying"))
        for mid in QUEUED:
            m = seen[self.jobs[mid]]
            self.assertEqual((m["status"], m["model_id"], m["kind"]), ("queued", mid, "install"))

    def test_new_subscriber_gets_every_active_job(self):
        time.sleep(0.3)  # the installer announces the queued jobs as it sees them
        seen, took = self.first_states(1.0 * SLOW)
        self.assertAllActive(seen, took)

    def test_after_the_buffer_filled_up(self):
        msgs, running = [], 0
        with self.ws() as ws:  # the download sends up to 10 messages a second
            deadline = time.monotonic() + 20 * SLOW
            while running <= 72 and time.monotonic() < deadline:
                try:
                    msgs.append(json.loads(ws.recv(deadline - time.monotonic())))
                except TimeoutError:
                    break
                running += msgs[-1]["job_id"] == self.jobs[RUNNING]
        self.assertGreater(running, 72, "the download filled nchan's buffer")
        for mid in QUEUED:
            again = [m for m in msgs if m["job_id"] == self.jobs[mid]]
            self.assertGreaterEqual(len(again), 2, f"{mid}: replayed, then sent again")
            self.assertEqual({m["status"] for m in again}, {"queued"})
        seen, took = self.first_states(1.0 * SLOW)
        self.assertAllActive(seen, took)

    def restart_nginx(self):
        pid = self.stack.pid("nginx")
        self.stack.sv("restart", "nginx")  # the supervisor stops nginx and starts it anew
        wait_until(lambda: self.stack.pid("nginx") not in (None, pid), 10,
                   what="a new nginx")
        self.stack.record_pids()
        wait_until(lambda: self.stack.get("/api/models/health").status == 200, 10,
                   what="nginx to answer again")

    def test_after_nginx_restart(self):
        self.restart_nginx()
        seen, took = self.first_states(1.0 * SLOW)
        self.assertAllActive(seen, took)
        self.assertIn("republished", self.stack.log("installer"))


if __name__ == "__main__":
    mgtest.main()
