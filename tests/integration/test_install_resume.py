#!/usr/bin/env python3
"""test_install_resume.py - installs that do not go straight through, against the real stack
and a real download server (dlserver.py): a connection dropped mid-file resumes with Range;
5xx answers are retried with backoff, and the job fails with the reason when retries run out;
kill -9 of the daemon mid-download: the supervisor restarts it and it resumes (Range, bytes
served well under twice the size); cancel of a running job (DELETE /api/models/jobs/{id} and
DELETE /api/models/{id}) stops it within ~2 s, removes the partial and ends the progress with
cancelled; health says "down" while the daemon is stopped. Helpers: test_install.py."""

import os
import re
import time

import mgtest
from mgtest import alive, wait_until
from test_install import FAST_ENV, MiB, SLOW, InstallCase, model

DROP = "it-drop"
RETRY = "it-retry"
GIVEUP = "it-giveup"
CANCEL = "it-cancel"
DELCANCEL = "it-delete-running"
CRASH = "it-crash"
DONE = "it-done"
RANGE_RE = re.compile(r"^bytes=(\d+)-$")


def plain_models(*ids):
    def build(dl):
        return [model(m, dl.url(f"{m}.gguf"), dl.files[f"{m}.gguf"][1],
                      dl.files[f"{m}.gguf"][0]) for m in ids]
    return build


class ResumeCase(InstallCase):
    def range_starts(self):
        """The first byte of every Range request the server got (ints)."""
        out = []
        for h in self.dl.stats()["ranges"]:
            m = RANGE_RE.match(h)
            self.assertIsNotNone(m, f"unexpected Range header {h!r}")
            out.append(int(m.group(1)))
        return out


class RetryTest(ResumeCase):
    @classmethod
    def setUpClass(cls):
        files = {f"{DROP}.gguf": 4 * MiB + 777, f"{RETRY}.gguf": 1 * MiB,
                 f"{GIVEUP}.gguf": 1 * MiB, f"{CANCEL}.gguf": 4 * MiB,
                 f"{DELCANCEL}.gguf": 4 * MiB, f"{DONE}.gguf": 1 * MiB}
        cls.start(plain_models(DROP, RETRY, GIVEUP, CANCEL, DELCANCEL, DONE), files)

    def test_dropped_connection_resumes_with_range(self):
        size = self.dl.files[f"{DROP}.gguf"][0]
        cut = 1536 * 1024
        self.dl.control(drop_first=1, drop_after=cut)
        job = self.install(DROP)
        self.assertInstalled(DROP, f"{DROP}.gguf", job)
        st = self.dl.stats()
        self.assertEqual(self.range_starts(), [cut],
                         f"one Range request from the byte where the connection dropped: {st}")
        self.assertEqual(st["statuses"].get("206"), 1, st)
        served = self.dl.path_stats(f"{DROP}.gguf")["bytes"]
        self.assertLess(served, 1.5 * size, st)
        self.assertEqual(served, size, "bytes were downloaded twice")

    def test_job_left_running_for_installed_model_ends_installed(self):
        """A crash after the rename and the registry write, before the final status: the
        restarted daemon finds the model whole and registered and downloads nothing."""
        done = self.install(DONE)
        requests = self.dl.path_stats(f"{DONE}.gguf")["requests"]
        stale = dict(self.stack.read_json(f"jobs/{done['job_id']}.json"),
                     job_id="00000000deadbeef", status="downloading", progress=40.0)
        self.stack.write_json("jobs/00000000deadbeef.json", stale)
        job = self.wait_job("00000000deadbeef")
        self.assertEqual(job["status"], "installed", job)
        self.assertEqual(job["progress"], 100, job)
        self.assertEqual(self.dl.path_stats(f"{DONE}.gguf")["requests"], requests,
                         "the installed model was downloaded again")
        self.assertEqual(self.installed()[DONE]["status"], "installed")

    def test_server_errors_are_retried(self):
        self.dl.control(fail_first=2, fail_status=503)
        job = self.install(RETRY)
        self.assertInstalled(RETRY, f"{RETRY}.gguf", job)
        st = self.dl.stats()
        self.assertEqual(st["statuses"].get("503"), 2, st)
        self.assertEqual(self.dl.path_stats(f"{RETRY}.gguf")["requests"], 3, st)

    def test_retries_run_out(self):
        self.dl.control(fail_first=1000, fail_status=500)
        job = self.wait_job(self.post_install(GIVEUP)["job_id"])
        self.assertEqual(job["status"], "failed", job)
        self.assertIsInstance(job["error"], str, job)
        self.assertIn("HTTP 500", job["error"])
        self.assertEqual(job["error_code"], "http_500", job)
        tries = int(FAST_ENV["MG_RETRY_MAX"])
        self.assertEqual(self.dl.path_stats(f"{GIVEUP}.gguf")["requests"], tries,
                         f"MG_RETRY_MAX={tries} attempts")
        self.assertIn(str(tries), job["error"], "the error says how many attempts were made")
        self.assertFalse(os.path.exists(self.llm_file(GIVEUP)))
        # what arrived stays for a later install to resume: a partial, never installed
        self.assertEqual(self.installed().get(GIVEUP, {"status": "partial"})["status"], "partial")

    def start_slow(self, mid):
        """Starts a throttled install of `mid` and waits until it is well under way."""
        self.dl.control(throttle=256 * 1024)  # 4 MiB: 16 s, far from done when cancelled
        job_id = self.post_install(mid)["job_id"]
        wait_until(lambda: self.partial_size(mid) >= 64 * 1024, 10 * SLOW,
                   what=f"{mid} downloading")
        self.assertEqual(self.job(job_id)["status"], "downloading")
        return job_id

    def assertCancelled(self, mid, job_id, ws, elapsed, answer_status=None):
        if answer_status is not None:
            self.assertEqual(answer_status, "cancelled")
        self.assertLess(elapsed, 2.5 * SLOW, f"cancel took {elapsed:.2f} s")
        job = self.wait_job(job_id, timeout=3)
        self.assertEqual(job["status"], "cancelled", job)
        msgs = [m for _, m in self.ws_until_end(ws, job_id, timeout=5)]
        self.assertEqual(msgs[-1]["status"], "cancelled", msgs)
        self.assertEqual(msgs[-1]["model_id"], mid, msgs[-1])
        self.assertTrue(any(m["status"] == "downloading" for m in msgs), msgs)
        self.assertNothingLeft(mid)
        # the daemon stopped reading: nothing more arrives from the server
        time.sleep(0.5)
        before = self.dl.path_stats(f"{mid}.gguf")["bytes"]
        time.sleep(1.0)
        self.assertEqual(self.dl.path_stats(f"{mid}.gguf")["bytes"], before,
                         "the download goes on after the cancel")
        self.assertLess(before, self.dl.files[f"{mid}.gguf"][0])

    def test_cancel_running_job(self):
        with self.ws() as ws:
            job_id = self.start_slow(CANCEL)
            t0 = time.monotonic()
            r = self.stack.delete(f"/api/models/jobs/{job_id}")
            elapsed = time.monotonic() - t0
            body = self.assertJsonAnswer(r, 200)
            self.assertEqual(body["job_id"], job_id, body)
            self.assertCancelled(CANCEL, job_id, ws, elapsed, body["status"])
        # a cancelled job is not active any more: a new POST makes a new job
        self.dl.control(throttle=0)
        again = self.post_install(CANCEL)["job_id"]
        self.assertNotEqual(again, job_id)
        self.assertInstalled(CANCEL, f"{CANCEL}.gguf", self.wait_job(again))

    def test_delete_model_cancels_running_job(self):
        with self.ws() as ws:
            job_id = self.start_slow(DELCANCEL)
            t0 = time.monotonic()
            r = self.stack.delete(f"/api/models/{DELCANCEL}")
            elapsed = time.monotonic() - t0
            body = self.assertJsonAnswer(r, 200)
            self.assertEqual(body, {"deleted": DELCANCEL, "file_removed": False})
            self.assertCancelled(DELCANCEL, job_id, ws, elapsed)


class CrashTest(ResumeCase):
    @classmethod
    def setUpClass(cls):
        cls.start(plain_models(CRASH), {f"{CRASH}.gguf": 8 * MiB + 4321})

    def health(self):
        return self.assertJsonAnswer(self.stack.get("/api/models/health"), 200)["installer"]

    def kill9_installer(self):
        pid = self.stack.pid("installer")
        self.assertIsNotNone(pid, "no run/installer.pid")
        self.assertTrue(alive(pid))
        os.kill(pid, 9)
        wait_until(lambda: not alive(pid), 5, what=f"mg-installer {pid} to die")
        return pid

    def test_health_down_while_stopped(self):
        self.assertEqual(self.health(), "running")
        pid = self.stack.pid("installer")
        self.stack.sv("down", "installer")  # stopped, and the supervisor leaves it down
        try:
            wait_until(lambda: self.health() == "down", 3 * SLOW,
                       what="health to say the installer is down")
            self.assertFalse(alive(pid))
        finally:
            self.stack.sv("up", "installer")  # the other test needs a daemon
        wait_until(lambda: self.health() == "running", 5 * SLOW,
                   what="health to say the installer runs again")
        self.assertNotEqual(self.stack.pid("installer"), pid)
        self.stack.record_pids()

    def test_kill9_mid_download_resumes(self):
        size = self.dl.files[f"{CRASH}.gguf"][0]
        self.dl.control(throttle=2 * MiB)  # about 4 s
        job_id = self.post_install(CRASH)["job_id"]
        wait_until(lambda: self.partial_size(CRASH) >= size // 4, 10 * SLOW,
                   what="a quarter of the download")
        self.kill9_installer()
        self.assertFalse(os.path.exists(self.llm_file(CRASH)))
        self.assertNotIn(CRASH, self.installed())
        job = self.job(job_id)
        self.assertIn(job["status"], ("downloading", "verifying"), job)

        # the supervisor starts a new daemon, which takes the job up where the partial ends
        job = self.wait_job(job_id)
        self.stack.record_pids()
        self.assertInstalled(CRASH, f"{CRASH}.gguf", job)
        st = self.dl.stats()
        starts = self.range_starts()
        self.assertEqual(len(starts), 1, f"one Range request after the restart: {st}")
        self.assertGreaterEqual(starts[0], size // 4, st)
        self.assertEqual(st["statuses"].get("206"), 1, st)
        served = self.dl.path_stats(f"{CRASH}.gguf")["bytes"]
        self.assertLess(served, 1.5 * size, f"bytes served {served} for a {size}-byte file")
        self.assertEqual(self.jobs_of(CRASH), [job_id], "the restart made another job")

    def jobs_of(self, mid):
        jobs = self.assertJsonAnswer(self.stack.get("/api/models/jobs"), 200)["jobs"]
        return [j["job_id"] for j in jobs if j["model_id"] == mid]


if __name__ == "__main__":
    mgtest.main()
