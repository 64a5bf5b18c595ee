#!/usr/bin/env python3
"""test_install_faults.py - installs against a download server (dlserver.py) that misbehaves,
and the installer's own faults, through the real stack:

- a server trickling 1 byte/s: the job fails "stalled" after MG_RETRY_MAX attempts (trickling
  bytes do not restart the retry series) and frees its slot;
- content that changes upstream between two requests: If-Range makes the server send the new
  file whole, which is downloaded once from byte 0 and installed when it matches; a server
  that ignores If-Range is caught by the changed ETag of its 206; a server that refuses Range
  starts over;
- the size cap: a model with "sizeBytes": 0 and a small sizeGb against a server that sends far
  more fails "too_large" (announced by Content-Length, or while streaming without it), writing
  no more than 5 % + 1 MiB over the announced size; nothing is installed;
- a registry write that fails after the rename (config/models.json not JSON): the job fails
  "registry_error", the verified file stays, and the next install registers it without
  downloading it again;
- a crash right after the rename (MG_TEST_KILL_AFTER_RENAME): deploy/up's new daemon
  registers the file without a second download;
- a cancel while the installer is down: 202 "cancelling", and "cancelled" (partial removed)
  once the installer is back."""

import os
import shutil
import tempfile
import time

import mgtest
from mgtest import alive, wait_until
from test_install import SLOW, InstallCase, MiB, file_sha256, model

TRICKLE = "it-trickle"
CHANGE = "it-change"
IGNORE = "it-ignore-if-range"
NORANGE = "it-norange"
CAP = "it-cap"
CAPSTREAM = "it-cap-stream"
REGFAIL = "it-regfail"
CRASH = "it-rename-crash"
DOWN = "it-cancel-down"
AFTER = "it-after-stall"
RETRIES = 3
CAP_ANNOUNCED = 4000
CAP_LIMIT = CAP_ANNOUNCED + CAP_ANNOUNCED // 20 + MiB


def fault_models(dl):
    def plain(mid):
        size, digest = dl.files[f"{mid}.gguf"]
        return model(mid, dl.url(f"{mid}.gguf"), digest, size)

    out = [plain(m) for m in (TRICKLE, NORANGE, REGFAIL, CRASH, DOWN, AFTER)]
    for mid in (CHANGE, IGNORE):  # the gallery knows the new content
        size, digest = dl.files[f"{mid}.gguf.v2"]
        out.append(model(mid, dl.url(f"{mid}.gguf"), digest, size))
    for mid in (CAP, CAPSTREAM):
        size, digest = dl.files[f"{mid}.gguf"]
        out.append(model(mid, dl.url(f"{mid}.gguf"), digest, size, sizeBytes=0,
                         sizeGb=CAP_ANNOUNCED / 1e9))
    return out


class FaultTest(InstallCase):
    @classmethod
    def setUpClass(cls):
        cls.flags = tempfile.mkdtemp(prefix="mg-it-flags-")
        cls.addClassCleanup(shutil.rmtree, cls.flags, True)
        cls.kill_flag = os.path.join(cls.flags, "kill-after-rename")
        files = {f"{TRICKLE}.gguf": 64 * 1024, f"{CHANGE}.gguf": 2 * MiB,
                 f"{CHANGE}.gguf.v2": 2 * MiB, f"{IGNORE}.gguf": 2 * MiB,
                 f"{IGNORE}.gguf.v2": 2 * MiB, f"{NORANGE}.gguf": 1 * MiB + 17,
                 f"{CAP}.gguf": 8 * MiB, f"{CAPSTREAM}.gguf": 8 * MiB,
                 f"{REGFAIL}.gguf": 1 * MiB, f"{CRASH}.gguf": 2 * MiB, f"{DOWN}.gguf": 4 * MiB,
                 f"{AFTER}.gguf": 64 * 1024}
        cls.start(fault_models, files,
                  env={"MG_RETRY_MAX": str(RETRIES), "MG_STALL_SECONDS": "2",
                       "MG_TEST_KILL_AFTER_RENAME": cls.kill_flag})
        # the daemon removes the flag: it runs as the owner of the root's jobs/
        st = os.stat(cls.stack.path("jobs"))
        os.chown(cls.flags, st.st_uid, st.st_gid)

    def failed_job(self, mid, code, timeout=30.0):
        job = self.wait_job(self.post_install(mid)["job_id"], timeout=timeout)
        self.assertEqual(job["status"], "failed", job)
        self.assertEqual(job["error_code"], code, job)
        self.assertIsInstance(job["error"], str, job)
        return job

    # --- the server misbehaves ---

    def test_trickle_fails_stalled(self):
        self.dl.control(throttle=1)  # one byte per second
        t0 = time.monotonic()
        job = self.failed_job(TRICKLE, "stalled", timeout=40)
        elapsed = time.monotonic() - t0
        self.assertIn("stalled", job["error"])
        self.assertIn(f"gave up after {RETRIES} attempts", job["error"])
        st = self.dl.path_stats(f"{TRICKLE}.gguf")
        self.assertEqual(st["requests"], RETRIES, st)
        self.assertGreater(st["bytes"], 0, "bytes trickled in")
        self.assertLess(elapsed, 25 * SLOW, f"a stalled job took {elapsed:.1f} s to fail")
        self.assertFalse(os.path.exists(self.llm_file(TRICKLE)))
        # the slot is free again: the next job runs
        self.dl.control(throttle=0)
        self.assertInstalled(AFTER, f"{AFTER}.gguf", self.install(AFTER))

    def assertInstalledV2(self, mid, job):
        size, digest = self.dl.files[f"{mid}.gguf.v2"]
        self.assertEqual(job["status"], "installed", job)
        self.assertEqual(job["downloaded"], size, job)
        self.assertEqual(file_sha256(self.llm_file(mid)), digest, "the new content is installed")
        self.assertEqual(self.installed()[mid]["status"], "installed")
        self.assertEqual(self.partials(mid), [])

    def test_changed_upstream_restarts_once_with_if_range(self):
        cut = 512 * 1024
        self.dl.control(drop_first=1, drop_after=cut, change_after=1)
        self.assertInstalledV2(CHANGE, self.install(CHANGE))
        st = self.dl.stats()
        self.assertEqual(st["ranges"], [f"bytes={cut}-"], st)
        self.assertNotIn("206", st["statuses"], "the If-Range answer is the whole new file")
        size = self.dl.files[f"{CHANGE}.gguf.v2"][0]
        self.assertEqual(self.dl.path_stats(f"{CHANGE}.gguf"), {"requests": 2, "bytes": cut + size})
        self.assertIn("changed upstream", self.stack.log("installer"))

    def test_changed_upstream_without_if_range_support(self):
        cut = 512 * 1024
        self.dl.control(drop_first=1, drop_after=cut, change_after=1, ignore_if_range=True)
        self.assertInstalledV2(IGNORE, self.install(IGNORE))
        st = self.dl.stats()
        self.assertEqual(st["statuses"].get("206"), 1, st)
        self.assertEqual(self.dl.path_stats(f"{IGNORE}.gguf")["requests"], 3,
                         f"the 206 with another ETag is dropped, then the whole file: {st}")

    def test_server_refusing_range_starts_over(self):
        size = self.dl.files[f"{NORANGE}.gguf"][0]
        cut = 256 * 1024
        self.dl.control(drop_first=1, drop_after=cut, no_range=True)
        job = self.install(NORANGE)
        self.assertInstalled(NORANGE, f"{NORANGE}.gguf", job)
        st = self.dl.stats()
        self.assertNotIn("206", st["statuses"], st)
        self.assertEqual(st["ranges"], [f"bytes={cut}-"], st)
        self.assertEqual(self.dl.path_stats(f"{NORANGE}.gguf"), {"requests": 2, "bytes": cut + size})

    def assertCapped(self, mid, job):
        self.assertLessEqual(job["downloaded"], CAP_LIMIT, job)
        self.assertIn(str(CAP_ANNOUNCED), job["error"], "the error names the announced size")
        self.assertNothingLeft(mid)

    def test_size_cap_announced_by_content_length(self):
        job = self.failed_job(CAP, "too_large")
        self.assertIn("announces", job["error"])
        self.assertEqual(job["downloaded"], 0, job)
        self.assertCapped(CAP, job)

    def test_size_cap_while_streaming(self):
        self.dl.control(no_length=True)
        job = self.failed_job(CAPSTREAM, "too_large")
        self.assertIn(f"more than {CAP_LIMIT} bytes", job["error"])
        self.assertCapped(CAPSTREAM, job)
        self.assertEqual(self.dl.path_stats(f"{CAPSTREAM}.gguf")["requests"], 1, "not retried")

    # --- the installer's own faults ---

    def test_registry_write_failure_then_next_install_registers(self):
        self.stack.write_file("config/models.json", "{not json")
        try:
            job = self.failed_job(REGFAIL, "registry_error")
            self.assertIn("registry", job["error"])
            path = self.llm_file(REGFAIL)
            self.assertTrue(os.path.isfile(path), "the verified file stays in models/llm/")
            self.assertEqual(file_sha256(path), self.dl.files[f"{REGFAIL}.gguf"][1])
        finally:
            self.stack.write_json("config/models.json", {"models": {}})
        self.assertEqual(self.installed()[REGFAIL]["status"], "unregistered")
        job = self.install(REGFAIL)
        self.assertInstalled(REGFAIL, f"{REGFAIL}.gguf", job)
        st = self.dl.path_stats(f"{REGFAIL}.gguf")
        self.assertEqual(st, {"requests": 1, "bytes": self.dl.files[f"{REGFAIL}.gguf"][0]},
                         "the file was downloaded again")
        self.assertIn("nothing to download", self.stack.log("installer"))

    def test_crash_after_rename_registers_without_second_download(self):
        size, digest = self.dl.files[f"{CRASH}.gguf"]
        pid = self.stack.pid("installer")
        self.stack.sv("once", "installer")  # the supervisor leaves it down when it dies
        with open(self.kill_flag, "w"):
            pass
        try:
            job_id = self.post_install(CRASH)["job_id"]
            wait_until(lambda: not alive(pid), 20 * SLOW, what="the daemon to kill itself")
        finally:
            if os.path.exists(self.kill_flag):
                os.unlink(self.kill_flag)
        self.assertEqual(file_sha256(self.llm_file(CRASH)), digest)
        self.assertNotIn(CRASH, self.stack.read_json("config/models.json").get("models", {}))
        self.assertIn(self.job(job_id)["status"], ("downloading", "verifying"))
        self.stack.start()  # deploy/up: the new daemon takes the job up
        job = self.wait_job(job_id)
        self.assertInstalled(CRASH, f"{CRASH}.gguf", job)
        self.assertEqual(self.dl.path_stats(f"{CRASH}.gguf"), {"requests": 1, "bytes": size})

    def test_cancel_while_installer_down(self):
        self.dl.control(throttle=256 * 1024)
        job_id = self.post_install(DOWN)["job_id"]
        wait_until(lambda: self.partial_size(DOWN) >= 64 * 1024, 10 * SLOW,
                   what="the download under way")
        pid = self.stack.pid("installer")
        self.stack.sv("once", "installer")  # the supervisor leaves it down when it dies
        os.kill(pid, 9)
        wait_until(lambda: not alive(pid), 5, what="mg-installer to die")
        t0 = time.monotonic()
        r = self.stack.delete(f"/api/models/jobs/{job_id}")
        elapsed = time.monotonic() - t0
        body = self.assertJsonAnswer(r, 202)
        self.assertEqual((body["job_id"], body["status"]), (job_id, "cancelling"), body)
        self.assertGreaterEqual(elapsed, 0.9, "it waited for the installer to confirm")
        self.assertLess(elapsed, 3 * SLOW)
        self.assertEqual(self.job(job_id)["status"], "cancelling")
        listed = self.assertJsonAnswer(
            self.stack.get("/api/models/jobs?status=cancelling"), 200)["jobs"]
        self.assertEqual([j["job_id"] for j in listed], [job_id])
        self.assertGreater(self.partial_size(DOWN), 0, "nobody removed the partial yet")
        # DELETE again: still 202
        self.assertEqual(self.stack.delete(f"/api/models/jobs/{job_id}").status, 202)
        self.stack.start()
        job = self.wait_job(job_id, timeout=10)
        self.assertEqual(job["status"], "cancelled", job)
        self.assertIsNone(job["error_code"], job)
        self.assertNothingLeft(DOWN)
        with self.ws() as ws:
            msgs = [m for _, m in self.ws_until_end(ws, job_id, timeout=5)]
        self.assertEqual(msgs[-1]["status"], "cancelled", msgs)
        self.assertEqual(self.assertJsonAnswer(self.stack.delete(f"/api/models/jobs/{job_id}"),
                                               409)["error"]["code"], "job_finished")


if __name__ == "__main__":
    mgtest.main()
