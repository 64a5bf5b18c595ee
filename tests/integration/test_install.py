#!/usr/bin/env python3
"""test_install.py - installing models through the real stack from a real download server
(dlserver.py on 127.0.0.1): progress over the real WebSocket (non-decreasing, ends installed
at 100, a late subscriber gets the latest state), the file's SHA-256 and the registry entry,
the job answers, a checksum mismatch, a 404, two concurrent POSTs (one job), 409 when
installed, install then DELETE, 507 for a model larger than the disk, unknown and malformed
ids, the job list and health. Resuming, crashes, retries and cancel: test_install_resume.py.

The helpers here (DlServer, the gallery builder, waiting for a job) are shared with the
other test_install_*.py files."""

import datetime
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import mgtest
from mgtest import HERE, Stack, StackTestCase, request, wait_until
from wsclient import WebSocket

MiB = 1024 * 1024
TERMINAL = ("installed", "failed", "cancelled")
ISO_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d$")
PROGRESS_KEYS = {"model_id", "job_id", "kind", "status", "progress", "downloaded", "total",
                 "bytes_per_second", "eta_s", "error", "error_code", "node", "source_url"}
JOB_KEYS = {"job_id", "model_id", "kind", "status", "progress", "downloaded", "total", "error",
            "error_code", "diagnosis", "created_at", "updated_at", "node", "source_url"}
# Short retry and stall times for the daemon (it inherits deploy/up's environment).
FAST_ENV = {"MG_RETRY_BASE_MS": "100", "MG_RETRY_MAX": "4", "MG_STALL_SECONDS": "3"}
# ASan builds are slower: every wait is generous, the assertions are about content.
SLOW = 2.0 if "asan" in os.path.basename(mgtest.bin_dir()).lower() else 1.0


# --- the download server, as a separate process stopped by its pid -------------------------

class DlServer:
    """dlserver.py in its own process over a temp directory of generated files."""

    def __init__(self, **settings):
        self.dir = tempfile.mkdtemp(prefix="mg-dl-")
        self.files = {}  # name -> (size, sha256 hex)
        args = [sys.executable, os.path.join(HERE, "dlserver.py"), "--dir", self.dir]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("PORT "):
            self.stop()
            raise AssertionError(f"dlserver did not start: {line!r}")
        self.port = int(line.split()[1])
        if settings:
            self.control(**settings)

    def add_random(self, name, size):
        """Writes `size` random bytes as `name`; returns the sha256 hex digest."""
        data = os.urandom(size)
        with open(os.path.join(self.dir, name), "wb") as f:
            f.write(data)
        digest = hashlib.sha256(data).hexdigest()
        self.files[name] = (size, digest)
        return digest

    def url(self, name):
        return f"http://127.0.0.1:{self.port}/{name}"

    def control(self, **settings):
        r = request(self.port, "POST", "/_control", settings)
        assert r.status == 200, r
        return r.json

    def defaults(self):
        """No throttle, no faults, Range honoured; counters cleared."""
        self.control(throttle=0, fail_first=0, fail_status=500, drop_first=0, drop_after=0,
                     no_range=False, change_after=0, ignore_if_range=False, no_length=False,
                     announce="", chunk_log=False, sndbuf=0, corrupt_from=0)
        self.reset()

    def reset(self):
        assert request(self.port, "POST", "/_stats/reset").status == 200

    def stats(self):
        return request(self.port, "GET", "/_stats").json

    def chunks(self):
        """[[monotonic s, bytes, path], ...] of the body chunks sent (with chunk_log on)."""
        return request(self.port, "GET", "/_chunks").json

    def path_stats(self, name):
        return self.stats()["paths"].get("/" + name, {"requests": 0, "bytes": 0})

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def model(mid, url, sha_hex, size, **extra):
    m = {"id": mid, "name": f"Test model {mid}", "checksum": "sha256:" + sha_hex,
         "downloadUrl": url, "sizeGb": size / 1e9, "license": "mit", "tags": ["test"]}
    m.update(extra)
    return m


def gallery(models):
    return {"version": 1, "generatedAt": "2025-01-01T00:00:00Z", "models": models}


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class InstallCase(StackTestCase):
    """Assertions and waits around install jobs; subclasses set cls.stack and cls.dl."""

    stack = None
    dl = None

    @classmethod
    def start(cls, models, files, env=None, server=None):
        """Starts the download server with `files` ({name: size}), then a stack whose gallery
        is models(dl) (a function of the server, for its URLs) and whose server.json is
        allow_http plus `server`. Stopped at class end."""
        cls.dl = DlServer()
        cls.addClassCleanup(cls.dl.stop)
        for name, size in files.items():
            cls.dl.add_random(name, size)
        cls.stack = Stack(gallery=gallery(models(cls.dl)),
                          server=dict({"allow_http": True}, **(server or {})),
                          env=dict(FAST_ENV, **(env or {})))
        cls.addClassCleanup(cls.stack.stop)

    def setUp(self):
        self.dl.defaults()

    # --- requests ---

    def post_install(self, mid, status=202):
        r = self.stack.post(f"/api/models/gallery/{mid}/install")
        body = self.assertJsonAnswer(r, status)
        if status == 202:
            self.assertEqual(body["model_id"], mid, body)
            self.assertRegex(body["job_id"], r"^[0-9a-f]{16}$")
            self.assertIn(body["status"], ("queued", "downloading"), body)
            self.assertEqual(r.header("location"), f"/api/models/jobs/{body['job_id']}")
        return body

    def job(self, job_id):
        return self.assertJsonAnswer(self.stack.get(f"/api/models/jobs/{job_id}"), 200)

    def wait_job(self, job_id, statuses=TERMINAL, timeout=30.0):
        """Polls GET /api/models/jobs/{id} until its status is one of `statuses`."""
        seen = []

        def check():
            j = self.job(job_id)
            seen.append(j["status"])
            return j if j["status"] in statuses else None
        try:
            return wait_until(check, timeout * SLOW, 0.05, f"job {job_id} in {statuses}")
        except AssertionError as e:
            raise AssertionError(f"{e}; statuses seen {sorted(set(seen))}; last "
                                 f"{self.job(job_id)}\n{self.stack.diagnostics()}") from None

    def install(self, mid, timeout=30.0):
        """POSTs an install and waits for the job to end; returns the final job."""
        job = self.wait_job(self.post_install(mid)["job_id"], timeout=timeout)
        self.assertEqual(job["status"], "installed",
                         f"{job}\n{self.stack.diagnostics()}")
        return job

    def installed(self):
        return self.assertJsonAnswer(self.stack.get("/api/models/installed"), 200)["models"]

    # --- files ---

    def llm_file(self, mid):
        return self.stack.path("models", "llm", f"{mid}.gguf")

    def partials(self, mid):
        d = self.stack.path("models", ".partial")
        return sorted(n for n in os.listdir(d) if n.startswith(mid + ".")) \
            if os.path.isdir(d) else []

    def partial_size(self, mid):
        try:
            return os.path.getsize(self.stack.path("models", ".partial", f"{mid}.gguf.part"))
        except OSError:
            return 0

    def assertNothingLeft(self, mid):
        """No model file, no partial, no registry entry for `mid`."""
        self.assertFalse(os.path.exists(self.llm_file(mid)), f"models/llm/{mid}.gguf exists")
        self.assertEqual(self.partials(mid), [], "partial files left in models/.partial/")
        self.assertNotIn(mid, self.installed())

    def assertInstalled(self, mid, name, job=None):
        """The file is whole with the gallery's digest, the registry entry and the job agree."""
        size, digest = self.dl.files[name]
        path = self.llm_file(mid)
        self.assertTrue(os.path.isfile(path), f"models/llm/{mid}.gguf is missing")
        self.assertEqual(os.path.getsize(path), size)
        self.assertEqual(file_sha256(path), digest, "the installed file's SHA-256")
        self.assertEqual(self.partials(mid), [], "partial files left in models/.partial/")
        entry = self.installed().get(mid)
        self.assertIsNotNone(entry, f"{mid} not in GET /api/models/installed")
        want = {"id": mid, "name": f"Test model {mid}", "path": f"models/llm/{mid}.gguf",
                "size": size, "backend": "gallery", "active": False, "status": "installed"}
        for k, v in want.items():
            self.assertEqual(entry.get(k), v, f"{k} of {entry}")
        self.assertRegex(entry["installedAt"], ISO_OFFSET)
        at = datetime.datetime.fromisoformat(entry["installedAt"])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertLess(abs((now - at).total_seconds()), 600, entry["installedAt"])
        disk = self.stack.read_json("config/models.json")["models"][mid]
        self.assertNotIn("status", disk)
        self.assertEqual(disk["path"], f"models/llm/{mid}.gguf")
        if job is not None:
            self.assertEqual(job["status"], "installed", job)
            self.assertEqual(job["progress"], 100, job)
            self.assertEqual(job["downloaded"], size, job)
            self.assertEqual(job["total"], size, job)
            self.assertIsNone(job["error"], job)
            self.assertIsNone(job["error_code"], job)
            self.assertIsNone(job["diagnosis"], job)
            self.assertEqual(job["kind"], "install", job)
            self.assertLessEqual(JOB_KEYS, set(job), job)

    # --- WebSocket ---

    def ws(self):
        return WebSocket("127.0.0.1", self.stack.port, "/api/models/ws/progress")

    def ws_until_end(self, ws, job_id, timeout=30.0):
        """Progress messages of `job_id` (dicts, in order) up to its terminal one."""
        out = []
        deadline = time.monotonic() + timeout * SLOW
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no terminal progress message for {job_id} in time; got "
                                     f"{[m['status'] for m in out]}; job "
                                     f"{self.job(job_id)}\n{self.stack.diagnostics()}")
            try:
                m = json.loads(ws.recv(left))
            except TimeoutError:
                continue
            if m.get("job_id") != job_id:
                continue
            out.append((time.monotonic(), m))
            if m.get("status") in TERMINAL:
                return out


# --- the tests ---------------------------------------------------------------------------

GOOD = "it-good"          # throttled, watched over the WebSocket
DELETE = "it-delete"
DUP = "it-dup"
TWICE = "it-concurrent"
LISTED = "it-listed"
MISMATCH = "it-mismatch"  # same bytes as DUP, wrong checksum
NOTFOUND = "it-404"
HUGE = "it-huge"
WRONG = "0" * 64


def install_models(dl):
    ms = [model(m, dl.url(f"{m}.gguf"), dl.files[f"{m}.gguf"][1], dl.files[f"{m}.gguf"][0])
          for m in (GOOD, DELETE, DUP, TWICE, LISTED)]
    size = dl.files[f"{DUP}.gguf"][0]
    ms.append(model(MISMATCH, dl.url(f"{DUP}.gguf"), WRONG, size))
    ms.append(model(NOTFOUND, dl.url("no/such/file.gguf"), WRONG, size))
    ms.append(model(HUGE, dl.url(f"{DUP}.gguf"), WRONG, size, sizeGb=1e6))
    return ms


class InstallTest(InstallCase):
    @classmethod
    def setUpClass(cls):
        files = {f"{GOOD}.gguf": 3 * MiB}
        for m in (DELETE, DUP, TWICE, LISTED):
            files[f"{m}.gguf"] = 1 * MiB + 12345
        cls.start(install_models, files)

    def test_progress_over_websocket_then_installed(self):
        size = self.dl.files[f"{GOOD}.gguf"][0]
        self.dl.control(throttle=1 * MiB)  # about 3 s: many progress messages
        with self.ws() as ws:
            started = time.monotonic()
            job_id = self.post_install(GOOD)["job_id"]
            # a late subscriber mid-download gets the latest state at once (nchan's buffer)
            self.assertTrue(wait_until(lambda: self.partial_size(GOOD) > size // 4,
                                       10 * SLOW, what="a quarter of the download"))
            with self.ws() as late:
                first = [json.loads(t) for t in late.messages(1.0)]
                mine = [m for m in first if m["job_id"] == job_id]
                self.assertTrue(mine, f"a late subscriber got nothing of {job_id}: {first}")
                self.assertIn(mine[-1]["status"], ("downloading", "verifying"), mine[-1])
                self.assertGreater(mine[-1]["downloaded"], 0, mine[-1])
            timed = self.ws_until_end(ws, job_id)
        msgs = [m for _, m in timed]
        statuses = [m["status"] for m in msgs]
        for m in msgs:
            self.assertEqual(set(m), PROGRESS_KEYS, m)
            self.assertEqual(m["model_id"], GOOD, m)
            self.assertTrue(0 <= m["progress"] <= 100, m)
        self.assertEqual(statuses[-1], "installed", statuses)
        self.assertEqual(msgs[-1]["progress"], 100, msgs[-1])
        self.assertEqual(msgs[-1]["downloaded"], size, msgs[-1])
        self.assertEqual(msgs[-1]["total"], size, msgs[-1])
        self.assertIsNone(msgs[-1]["error"], msgs[-1])
        downloading = [m for m in msgs if m["status"] == "downloading"]
        self.assertGreaterEqual(len(downloading), 5, f"only {len(downloading)} downloading "
                                f"messages in {time.monotonic() - started:.1f} s: {statuses}")
        self.assertIn("verifying", statuses)
        order = ["queued", "downloading", "verifying", "installed"]
        ranks = [order.index(s) for s in statuses]
        self.assertEqual(ranks, sorted(ranks), f"statuses go backwards: {statuses}")
        for a, b in zip(msgs, msgs[1:]):
            self.assertLessEqual(a["progress"], b["progress"], f"progress decreases: {a} {b}")
            self.assertLessEqual(a["downloaded"], b["downloaded"], f"downloaded decreases: {a} {b}")
        self.assertTrue(any(m["bytes_per_second"] > 0 for m in downloading), downloading)
        for m in msgs:
            self.assertEqual(m["kind"], "install", m)
            if m["status"] == "downloading" and m["bytes_per_second"] > 0:
                left = m["total"] - m["downloaded"]
                self.assertEqual(m["eta_s"], -(-left // m["bytes_per_second"]), m)
            elif m["status"] != "downloading":
                self.assertEqual(m["eta_s"], 0 if m["status"] == "installed" else None, m)
        # at least every second while running (loose: 2 s, for a loaded machine)
        gaps = [b[0] - a[0] for a, b in zip(timed, timed[1:])]
        self.assertLess(max(gaps), 2.0 * SLOW, f"a gap of {max(gaps):.2f} s between messages")
        self.assertInstalled(GOOD, f"{GOOD}.gguf", self.job(job_id))
        st = self.dl.path_stats(f"{GOOD}.gguf")
        self.assertEqual(st["bytes"], size, st)

    def test_checksum_mismatch(self):
        size, actual = self.dl.files[f"{DUP}.gguf"]
        job_id = self.post_install(MISMATCH)["job_id"]
        job = self.wait_job(job_id)
        self.assertEqual(job["status"], "failed", job)
        self.assertIsInstance(job["error"], str, job)
        self.assertEqual(job["error_code"], "checksum_mismatch", job)
        self.assertIn(WRONG, job["error"], "the error names the expected digest")
        self.assertIn(actual, job["error"], "the error names the digest of the download")
        self.assertNothingLeft(MISMATCH)
        self.assertEqual(self.dl.path_stats(f"{DUP}.gguf")["bytes"], size)
        # a failed job is not active: a new POST makes a new job
        again = self.post_install(MISMATCH)["job_id"]
        self.assertNotEqual(again, job_id)
        self.assertEqual(self.wait_job(again)["status"], "failed")

    def test_http_404_fails_without_retries(self):
        job = self.wait_job(self.post_install(NOTFOUND)["job_id"])
        self.assertEqual(job["status"], "failed", job)
        self.assertIsInstance(job["error"], str, job)
        self.assertRegex(job["error"], r"HTTP 404\b", job)
        self.assertEqual(job["error_code"], "http_404", job)
        self.assertNothingLeft(NOTFOUND)
        st = self.dl.path_stats("no/such/file.gguf")
        self.assertEqual(st["requests"], 1, f"a 404 was retried: {st}")

    def test_concurrent_posts_make_one_job(self):
        answers, errors = [], []
        barrier = threading.Barrier(4)

        def post():
            try:
                barrier.wait(5)
                r = self.stack.post(f"/api/models/gallery/{TWICE}/install")
                answers.append((r.status, r.json, r.header("location")))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
        threads = [threading.Thread(target=post) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])
        self.assertEqual([a[0] for a in answers], [202] * 4, answers)
        job_ids = {a[1]["job_id"] for a in answers}
        self.assertEqual(len(job_ids), 1, f"concurrent POSTs made several jobs: {answers}")
        job_id = job_ids.pop()
        self.assertEqual({a[2] for a in answers}, {f"/api/models/jobs/{job_id}"})
        mine = [j for j in self.jobs() if j["model_id"] == TWICE]
        self.assertEqual([j["job_id"] for j in mine], [job_id], mine)
        self.assertInstalled(TWICE, f"{TWICE}.gguf", self.wait_job(job_id))
        self.assertEqual(self.dl.path_stats(f"{TWICE}.gguf")["requests"], 1)

    def test_installed_model_is_409(self):
        self.install(DUP)
        r = self.stack.post(f"/api/models/gallery/{DUP}/install")
        self.assertError(r, 409, "already_installed", "id", DUP)
        self.assertEqual(self.dl.path_stats(f"{DUP}.gguf")["requests"], 1)
        self.assertInstalled(DUP, f"{DUP}.gguf")

    def test_install_then_delete(self):
        self.assertInstalled(DELETE, f"{DELETE}.gguf", self.install(DELETE))
        r = self.stack.delete(f"/api/models/{DELETE}")
        self.assertEqual(self.assertJsonAnswer(r, 200), {"deleted": DELETE, "file_removed": True})
        self.assertNothingLeft(DELETE)
        self.assertNotIn(DELETE, self.stack.read_json("config/models.json")["models"])
        self.assertError(self.stack.delete(f"/api/models/{DELETE}"), 404, "not_found", "id")
        # and it can be installed again
        self.assertInstalled(DELETE, f"{DELETE}.gguf", self.install(DELETE))

    def test_larger_than_disk_is_507(self):
        r = self.stack.post(f"/api/models/gallery/{HUGE}/install")
        err = self.assertError(r, 507, "insufficient_storage", None, "not enough free disk")
        self.assertIn(HUGE, err["message"])
        self.assertNotIn(HUGE, [j["model_id"] for j in self.jobs()])
        self.assertEqual(self.dl.path_stats(f"{DUP}.gguf")["requests"], 0)

    def test_unknown_and_malformed_ids(self):
        self.assertError(self.stack.post("/api/models/gallery/no-such-model/install"), 404,
                         "model_not_found", "id", "no-such-model")
        for bad in ("..%2Fetc", ".hidden", "-dash", "a%20b", "a%2Fb", "a" * 200):
            with self.subTest(id=bad):
                self.assertError(self.stack.post(f"/api/models/gallery/{bad}/install"), 400,
                                 "invalid_model_id", "id")
        # nginx refuses a NUL in the path before mg-fcgi sees it
        self.assertError(self.stack.post("/api/models/gallery/%00/install"), 400, "bad_request",
                         None)
        self.assertError(self.stack.get("/api/models/jobs/..%2Fx"), 400, "invalid_job_id",
                         "job_id")
        self.assertError(self.stack.get("/api/models/jobs/0123456789abcdef"), 404,
                         "job_not_found", "job_id")
        self.assertError(self.stack.delete("/api/models/jobs/0123456789abcdef"), 404,
                         "job_not_found", "job_id")
        self.assertError(self.stack.request("PUT", f"/api/models/gallery/{DUP}/install"), 405,
                         "method_not_allowed", None)

    def jobs(self):
        body = self.assertJsonAnswer(self.stack.get("/api/models/jobs"), 200)
        self.assertEqual(set(body), {"node", "total", "offset", "limit", "jobs"})
        self.assertEqual((body["offset"], body["limit"]), (0, 100), body)
        return body["jobs"]

    def test_job_list(self):
        job_id = self.post_install(LISTED)["job_id"]
        listed = [j for j in self.jobs() if j["job_id"] == job_id]
        self.assertEqual(len(listed), 1)
        self.assertLessEqual(JOB_KEYS, set(listed[0]), listed[0])
        self.assertEqual(listed[0]["model_id"], LISTED)
        self.assertRegex(listed[0]["created_at"], ISO_OFFSET)
        self.wait_job(job_id)
        listed = [j for j in self.jobs() if j["job_id"] == job_id]
        self.assertEqual(listed[0]["status"], "installed", listed)
        self.assertEqual(listed[0]["progress"], 100, listed)
        self.assertEqual(listed[0], self.job(job_id))

    def test_health_installer_running(self):
        body = self.assertJsonAnswer(self.stack.get("/api/models/health"), 200)
        self.assertEqual(body["status"], "ok", body)
        self.assertEqual(body["installer"], "running", body)
        self.assertEqual(body["gallery_models"], len(install_models(self.dl)), body)


if __name__ == "__main__":
    mgtest.main()
