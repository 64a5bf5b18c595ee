#!/usr/bin/env python3
"""test_pause_rate.py - pause, resume and the bandwidth cap, against the real stack and a real
download server (dlserver.py): a paused download keeps its partial, frees its slot (another
install runs meanwhile), says paused on the progress channel, stays paused across a restart
of the whole stack and resumes with Range where it stopped; pausing a queued job, cancelling
a paused one, and the refusals (409, 404, 400); with max_download_rate two downloads share
the rate evenly and the bytes the server sent in any 5 s window stay within 10 % of it
(measured from the server's per-chunk log)."""

import json
import os
import time

import mgtest
from mgtest import wait_until
from test_install import SLOW, InstallCase, MiB, file_sha256, model

BIG = "it-pause-big"
SMALL = "it-pause-small"
QUEUED = "it-pause-queued"
DROPPED = "it-pause-cancel"
RATE_A = "it-rate-a"
RATE_B = "it-rate-b"
RATE = 2_000_000  # bytes per second for all downloads together
WINDOW = 5.0


def plain(*ids):
    def build(dl):
        return [model(m, dl.url(f"{m}.gguf"), dl.files[f"{m}.gguf"][1], dl.files[f"{m}.gguf"][0])
                for m in ids]
    return build


class PauseTest(InstallCase):
    @classmethod
    def setUpClass(cls):
        files = {f"{BIG}.gguf": 6 * MiB + 11, f"{SMALL}.gguf": 1 * MiB,
                 f"{QUEUED}.gguf": 1 * MiB, f"{DROPPED}.gguf": 2 * MiB}
        cls.start(plain(BIG, SMALL, QUEUED, DROPPED), files,
                  server={"max_parallel_downloads": 1})

    def pause(self, job_id, status=200):
        return self.assertJsonAnswer(self.stack.post(f"/api/models/jobs/{job_id}/pause"), status)

    def resume(self, job_id, status=202):
        r = self.stack.post(f"/api/models/jobs/{job_id}/resume")
        body = self.assertJsonAnswer(r, status)
        if status == 202:
            self.assertEqual(r.header("location"), f"/api/models/jobs/{job_id}")
        return body

    def ws_status(self, ws, job_id, status, timeout=5.0):
        """Waits for a progress message of `job_id` with `status`; returns it."""
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            try:
                m = json.loads(ws.recv(deadline - time.monotonic()))
            except TimeoutError:
                break
            if m.get("job_id") == job_id and m.get("status") == status:
                return m
        raise AssertionError(f"no {status} message of {job_id}; job {self.job(job_id)}")

    def test_pause_frees_the_slot_survives_restart_and_resumes_with_range(self):
        size, digest = self.dl.files[f"{BIG}.gguf"]
        self.dl.control(throttle=1 * MiB)
        job_id = self.post_install(BIG)["job_id"]
        wait_until(lambda: self.partial_size(BIG) > 1 * MiB, 10 * SLOW, what="1 MiB of it")
        with self.ws() as ws:
            t0 = time.monotonic()
            body = self.pause(job_id)
            self.assertEqual((body["job_id"], body["status"]), (job_id, "paused"), body)
            self.assertLess(time.monotonic() - t0, 2.5 * SLOW)
            msg = self.ws_status(ws, job_id, "paused")
            self.assertGreater(msg["downloaded"], 0, msg)
        kept = self.partial_size(BIG)
        self.assertGreater(kept, 1 * MiB)
        time.sleep(0.5)
        self.assertEqual(self.partial_size(BIG), kept, "a paused download stopped writing")
        job = self.job(job_id)
        self.assertEqual(job["status"], "paused", job)
        self.assertEqual(self.pause(job_id)["status"], "paused", "pausing twice is fine")
        self.assertIn(job_id, [j["job_id"] for j in self.assertJsonAnswer(
            self.stack.get("/api/models/jobs?status=paused"), 200)["jobs"]])
        # a paused download is no partial left behind, and cleanup leaves it alone
        self.assertNotIn(BIG, self.installed())
        cleanup = self.assertJsonAnswer(self.stack.get("/api/models/cleanup"), 200)
        self.assertNotIn(f"models/.partial/{BIG}.gguf.part", [i["path"] for i in cleanup["items"]])

        # the slot is free: with max_parallel_downloads 1 another install runs to the end
        self.dl.control(throttle=0)
        self.install(SMALL)

        # the whole stack restarts; the job stays paused, and a new subscriber learns so
        self.stack.start()
        time.sleep(1.0)
        self.assertEqual(self.job(job_id)["status"], "paused")
        self.assertEqual(self.partial_size(BIG), kept)
        with self.ws() as late:
            first = [json.loads(t) for t in late.messages(1.0)]
        mine = [m for m in first if m["job_id"] == job_id]
        self.assertTrue(mine and mine[-1]["status"] == "paused", first)

        self.dl.reset()
        body = self.resume(job_id)
        self.assertEqual(body["status"], "queued", body)
        job = self.wait_job(job_id)
        self.assertEqual((job["status"], job["downloaded"]), ("installed", size), job)
        self.assertEqual(file_sha256(self.llm_file(BIG)), digest)
        ranges = self.dl.stats()["ranges"]
        self.assertEqual(ranges, [f"bytes={kept}-"], "resumed where it stopped")
        self.assertEqual(self.dl.path_stats(f"{BIG}.gguf")["bytes"], size - kept)

    def test_queued_paused_cancelled_and_refusals(self):
        self.dl.control(throttle=512 * 1024)
        running = self.post_install(DROPPED)["job_id"]
        queued = self.post_install(QUEUED)["job_id"]
        self.assertEqual(self.job(queued)["status"], "queued")
        self.assertEqual(self.pause(queued)["status"], "paused")
        self.assertEqual(self.resume(queued)["status"], "queued")
        self.pause(queued)
        # a paused job holds its model: installing it again answers that job
        again = self.assertJsonAnswer(self.stack.post(f"/api/models/gallery/{QUEUED}/install"), 202)
        self.assertEqual((again["job_id"], again["status"]), (queued, "paused"), again)
        # cancel a paused job: cancelled, nothing left
        wait_until(lambda: self.partial_size(DROPPED) > 0, 10 * SLOW, what="a partial")
        self.pause(running)
        r = self.stack.delete(f"/api/models/jobs/{running}")
        self.assertIn(r.status, (200, 202), r)
        self.assertEqual(self.wait_job(running)["status"], "cancelled")
        wait_until(lambda: not self.partials(DROPPED), 5 * SLOW, what="the partial to go")
        self.assertError(self.stack.post(f"/api/models/jobs/{running}/pause"), 409,
                         "job_finished", "job_id")
        self.assertError(self.stack.post(f"/api/models/jobs/{running}/resume"), 409,
                         "job_finished", "job_id")
        self.assertError(self.stack.post("/api/models/jobs/0123456789abcdef/pause"), 404,
                         "job_not_found", "job_id")
        self.assertError(self.stack.post("/api/models/jobs/xyz/resume"), 400,
                         "invalid_job_id", "job_id")
        self.assertError(self.stack.get(f"/api/models/jobs/{queued}/pause"), 405,
                         "method_not_allowed", None, "allowed: POST")
        self.dl.control(throttle=0)
        self.resume(queued)
        self.assertEqual(self.wait_job(queued)["status"], "installed")


class RateTest(InstallCase):
    @classmethod
    def setUpClass(cls):
        files = {f"{RATE_A}.gguf": 7_500_000, f"{RATE_B}.gguf": 7_500_000}
        cls.start(plain(RATE_A, RATE_B), files,
                  server={"max_download_rate": RATE, "max_parallel_downloads": 2})

    def test_two_downloads_share_the_rate(self):
        # a small send buffer, so what the server's log calls sent is what the client took
        self.dl.control(chunk_log=True, sndbuf=32768)
        t0 = time.monotonic()
        jobs = [self.post_install(m)["job_id"] for m in (RATE_A, RATE_B)]
        for j in jobs:
            self.assertEqual(self.wait_job(j, timeout=60)["status"], "installed")
        took = time.monotonic() - t0
        chunks = self.dl.chunks()
        total = sum(n for _, n, _ in chunks)
        # a retry on a loaded machine may send again the few bytes that were in flight
        self.assertTrue(15_000_000 <= total < 15_500_000, total)
        self.assertGreater(took, 0.85 * total / RATE, "the downloads kept under the rate")
        start, end = chunks[0][0], chunks[-1][0]
        worst = []
        t = start
        while t + WINDOW <= end:
            sent = sum(n for at, n, _ in chunks if t <= at < t + WINDOW)
            worst.append((abs(sent - RATE * WINDOW) / (RATE * WINDOW), t - start, sent))
            t += 0.1
        self.assertTrue(worst, f"the downloads took {end - start:.1f} s")
        if os.environ.get("MG_RATE_DEBUG"):
            for sec in range(int(end - start) + 1):
                per = {}
                for at_, n, p in chunks:
                    if sec <= at_ - start < sec + 1:
                        per[p] = per.get(p, 0) + n
                print(sec, per)
        over = max(worst, key=lambda w: w[2])
        under = min(worst, key=lambda w: w[2])
        print(f"rate: {len(worst)} windows of {WINDOW} s: at most {over[2] / (RATE * WINDOW):.1%}"
              f" of the cap (from {over[1]:.1f} s), at least {under[2] / (RATE * WINDOW):.1%}")
        self.assertLessEqual(over[2], 1.10 * RATE * WINDOW,
                             f"{over[2]} bytes in the 5 s from {over[1]:.1f} s; the cap allows "
                             f"{RATE * WINDOW:.0f} + 10 %")
        # the floor shows the rate is used, not wasted; a loaded machine gets some slack
        self.assertGreaterEqual(under[2], (0.90 - 0.15 * SLOW) * RATE * WINDOW,
                                f"only {under[2]} bytes in the 5 s from {under[1]:.1f} s")
        # while both run, they share evenly
        both_end = min(max(at for at, _, p in chunks if p == f"/{m}.gguf") for m in (RATE_A, RATE_B))
        mid = [c for c in chunks if start + 1 <= c[0] < both_end - 1]
        share = sum(n for _, n, p in mid if p == f"/{RATE_A}.gguf") / max(1, sum(n for _, n, _ in mid))
        # about half each; a loaded machine (a thread waiting for a core) gets some slack
        self.assertTrue(0.3 <= share <= 0.7, f"{RATE_A} got {share:.0%} of the shared rate")


if __name__ == "__main__":
    mgtest.main()
