#!/usr/bin/env python3
"""test_lifecycle.py - what happens to installed models, against the real stack and a real
download server (dlserver.py): updates (update_available and latest_checksum once the gallery
changes; the old file stays installed and intact while the new one downloads, also when the
installer is killed mid-update; the swap after verification; 409 up_to_date, 404), verify
(re-hash with progress; a flipped byte marks the entry corrupt and the job failed with
checksum_mismatch; an update repairs it), the hash-drift diagnosis (a server that announces
the real SHA-256: catalogue_stale; one that does not: corrupt_download), files of any name in
the installed list, and cleanup (it removes exactly the items it previewed, unregistered
files only when asked, never a registered model or an unfinished job's partial)."""

import hashlib
import json
import os
import time

import mgtest
from mgtest import alive, wait_until
from test_install import SLOW, InstallCase, MiB, file_sha256, gallery, model

UPD = "it-upd"
KILL = "it-upd-kill"
VER = "it-verify"
GONE = "it-not-in-gallery"
STALE = "it-stale"
STALE2 = "it-stale-digest"
DAMAGED = "it-damaged"
ACTIVE = "it-active"
WRONG = "0" * 64


class LifecycleCase(InstallCase):
    """An InstallCase whose gallery can change: cls.models maps id -> (file name, sha)."""

    models = {}

    @classmethod
    def gallery_of(cls, dl):
        return [model(mid, dl.url(name), sha, dl.files[name][0])
                for mid, (name, sha) in sorted(cls.models.items())]

    def publish(self, mid, name, sha=None):
        """Points `mid` at the file `name` (its real digest unless `sha`) and waits until the
        API serves the new gallery."""
        self.models[mid] = (name, sha or self.dl.files[name][1])
        self.stack.write_gallery(gallery(self.gallery_of(self.dl)))
        want = "sha256:" + self.models[mid][1]

        def served():
            r = self.stack.get("/api/models/gallery/search?" + mgtest.qs({"query": mid}))
            return any(m["id"] == mid and m["checksum"] == want for m in r.json["models"])
        wait_until(served, 5 * SLOW, what=f"the gallery to name {name} for {mid}")

    def post(self, path, status):
        r = self.stack.post(path)
        return r, self.assertJsonAnswer(r, status)

    def kill9_installer(self):
        pid = self.stack.pid("installer")
        os.kill(pid, 9)
        wait_until(lambda: not alive(pid), 5, what=f"mg-installer {pid} to die")


class UpdateVerifyTest(LifecycleCase):
    @classmethod
    def setUpClass(cls):
        files = {f"{UPD}.gguf": 2 * MiB, f"{UPD}-v2.gguf": 3 * MiB + 17,
                 f"{KILL}.gguf": 1 * MiB, f"{KILL}-v2.gguf": 8 * MiB,
                 f"{VER}.gguf": 2 * MiB + 5}
        cls.start(lambda dl: cls.initial(dl), files)

    @classmethod
    def initial(cls, dl):
        cls.models = {m: (f"{m}.gguf", dl.files[f"{m}.gguf"][1]) for m in (UPD, KILL, VER)}
        return cls.gallery_of(dl)

    def test_update_swaps_only_after_verification(self):
        v1 = self.dl.files[f"{UPD}.gguf"][1]
        self.install(UPD)
        entry = self.installed()[UPD]
        self.assertEqual(entry["checksum"], "sha256:" + v1, entry)
        self.assertEqual(entry["gallery"], "default", entry)
        self.assertEqual(entry["latest_checksum"], "sha256:" + v1, entry)
        self.assertIs(entry["update_available"], False, entry)
        r, err = self.post(f"/api/models/{UPD}/update", 409)
        self.assertError(r, 409, "up_to_date", "id")

        self.publish(UPD, f"{UPD}-v2.gguf")
        v2 = self.dl.files[f"{UPD}-v2.gguf"][1]
        entry = self.installed()[UPD]
        self.assertIs(entry["update_available"], True, entry)
        self.assertEqual(entry["latest_checksum"], "sha256:" + v2, entry)
        self.assertEqual(entry["checksum"], "sha256:" + v1, entry)

        self.dl.control(throttle=1 * MiB)  # about 3 s
        r, body = self.post(f"/api/models/{UPD}/update", 202)
        self.assertEqual(body["kind"], "update", body)
        self.assertEqual(r.header("location"), f"/api/models/jobs/{body['job_id']}")
        wait_until(lambda: self.partial_size(UPD) > 0, 10 * SLOW, what="the update to download")
        # meanwhile the old file is the installed one, whole
        mid = self.installed()[UPD]
        self.assertEqual((mid["status"], mid["checksum"]), ("installed", "sha256:" + v1), mid)
        self.assertEqual(file_sha256(self.llm_file(UPD)), v1)
        _, again = self.post(f"/api/models/{UPD}/update", 202)
        self.assertEqual(again["job_id"], body["job_id"], "a second update joins the first")
        self.assertError(self.stack.post(f"/api/models/gallery/{UPD}/install"), 409,
                         "job_active", "id")
        self.assertError(self.stack.post(f"/api/models/{UPD}/verify"), 409, "job_active", "id")

        job = self.wait_job(body["job_id"])
        self.assertEqual((job["status"], job["kind"]), ("installed", "update"), job)
        self.assertEqual(file_sha256(self.llm_file(UPD)), v2)
        entry = self.installed()[UPD]
        self.assertEqual(entry["checksum"], "sha256:" + v2, entry)
        self.assertEqual(entry["size"], self.dl.files[f"{UPD}-v2.gguf"][0], entry)
        self.assertIs(entry["update_available"], False, entry)
        self.assertEqual(entry["status"], "installed", entry)
        self.assertEqual(self.partials(UPD), [])

    def test_update_errors(self):
        self.assertError(self.stack.post("/api/models/nothing-installed/update"), 404,
                         "not_installed", "id")
        self.assertError(self.stack.post("/api/models/..%2Fx/update"), 400, "invalid_model_id",
                         "id")
        self.assertError(self.stack.get(f"/api/models/{UPD}/update"), 405, "method_not_allowed",
                         None, "allowed: POST")
        reg = self.stack.read_json("config/models.json") if os.path.exists(
            self.stack.path("config", "models.json")) else {"models": {}}
        reg["models"][GONE] = {"id": GONE, "name": "Gone", "path": f"models/llm/{GONE}.gguf",
                               "size": 3, "installedAt": "2025-01-01T00:00:00+00:00",
                               "backend": "gallery", "active": False,
                               "checksum": "sha256:" + WRONG}
        self.stack.write_json("config/models.json", reg)
        self.stack.write_file(f"models/llm/{GONE}.gguf", b"abc")
        try:
            self.assertError(self.stack.post(f"/api/models/{GONE}/update"), 404,
                             "model_not_found", "id")
            entry = self.installed()[GONE]
            self.assertIsNone(entry["latest_checksum"], entry)
            self.assertIs(entry["update_available"], False, entry)
        finally:
            self.assertJsonAnswer(self.stack.delete(f"/api/models/{GONE}"), 200)

    def test_kill_mid_update_keeps_the_old_file(self):
        v1 = self.dl.files[f"{KILL}.gguf"][1]
        self.install(KILL)
        self.publish(KILL, f"{KILL}-v2.gguf")
        size2, v2 = self.dl.files[f"{KILL}-v2.gguf"]
        self.dl.control(throttle=2 * MiB)  # about 4 s
        _, body = self.post(f"/api/models/{KILL}/update", 202)
        wait_until(lambda: self.partial_size(KILL) >= size2 // 4, 10 * SLOW,
                   what="a quarter of the update")
        self.kill9_installer()
        self.assertEqual(file_sha256(self.llm_file(KILL)), v1, "the old file is intact")
        entry = self.installed()[KILL]
        self.assertEqual((entry["status"], entry["checksum"]), ("installed", "sha256:" + v1),
                         entry)
        self.assertIs(entry["update_available"], True, entry)
        kept = self.partial_size(KILL)
        self.dl.control(throttle=0)
        self.stack.start()  # deploy/up again: the update resumes
        job = self.wait_job(body["job_id"])
        self.assertEqual(job["status"], "installed", job)
        self.assertEqual(file_sha256(self.llm_file(KILL)), v2)
        self.assertEqual(self.installed()[KILL]["checksum"], "sha256:" + v2)
        starts = [int(h.split("=")[1].rstrip("-")) for h in self.dl.stats()["ranges"]]
        self.assertTrue(starts and starts[-1] >= kept // 2, f"resumed with Range: {starts}")

    def test_verify_then_flipped_byte_is_corrupt_and_update_repairs(self):
        size, digest = self.dl.files[f"{VER}.gguf"]
        self.install(VER)
        with self.ws() as ws:
            _, body = self.post(f"/api/models/{VER}/verify", 202)
            self.assertEqual(body["kind"], "verify", body)
            msgs = [m for _, m in self.ws_until_end(ws, body["job_id"])]
        self.assertIn("verifying", [m["status"] for m in msgs], msgs)
        self.assertEqual({m["kind"] for m in msgs}, {"verify"}, msgs)
        job = self.job(body["job_id"])
        self.assertEqual((job["status"], job["downloaded"], job["total"]),
                         ("installed", size, size), job)
        entry = self.installed()[VER]
        self.assertEqual(entry["status"], "installed", entry)
        self.assertIn("verifiedAt", entry)

        path = self.llm_file(VER)
        with open(path, "r+b") as f:
            f.seek(size // 2)
            b = f.read(1)
            f.seek(size // 2)
            f.write(bytes([b[0] ^ 0x01]))
        _, body = self.post(f"/api/models/{VER}/verify", 202)
        job = self.wait_job(body["job_id"])
        self.assertEqual((job["status"], job["error_code"], job["diagnosis"]),
                         ("failed", "checksum_mismatch", "corrupt_download"), job)
        self.assertIn(f"models/llm/{VER}.gguf", job["error"])
        entry = self.installed()[VER]
        self.assertEqual(entry["status"], "corrupt", entry)
        self.assertIs(self.stack.read_json("config/models.json")["models"][VER]["corrupt"], True)
        self.assertTrue(os.path.exists(path), "a failed verification removes nothing")

        # the checksums agree, but the file is damaged: an update downloads it again
        _, body = self.post(f"/api/models/{VER}/update", 202)
        self.assertEqual(self.wait_job(body["job_id"])["status"], "installed")
        self.assertEqual(file_sha256(path), digest)
        entry = self.installed()[VER]
        self.assertEqual(entry["status"], "installed", entry)
        self.assertNotIn("corrupt", self.stack.read_json("config/models.json")["models"][VER])

    def test_verify_errors(self):
        self.assertError(self.stack.post("/api/models/nothing-installed/verify"), 404,
                         "not_installed", "id")
        reg = self.stack.read_json("config/models.json")
        reg["models"]["it-vanished"] = {"id": "it-vanished", "name": "V",
                                        "path": "models/llm/it-vanished.gguf", "size": 3}
        self.stack.write_json("config/models.json", reg)
        try:
            self.assertError(self.stack.post("/api/models/it-vanished/verify"), 409,
                             "file_missing", "id")
        finally:
            self.assertJsonAnswer(self.stack.delete("/api/models/it-vanished"), 200)


class DiagnosisTest(LifecycleCase):
    """A checksum mismatch says whose fault it is."""

    @classmethod
    def setUpClass(cls):
        files = {f"{m}.gguf": 1 * MiB + 99 for m in (STALE, STALE2, DAMAGED)}

        def build(dl):
            return [model(m, dl.url(f"{m}.gguf"), WRONG, dl.files[f"{m}.gguf"][0])
                    for m in (STALE, STALE2, DAMAGED)]
        cls.start(build, files)

    def failed(self, mid):
        job = self.wait_job(self.post_install(mid)["job_id"])
        self.assertEqual((job["status"], job["error_code"]), ("failed", "checksum_mismatch"), job)
        self.assertNotIn(mid, self.installed())
        self.assertEqual(self.partials(mid), [])
        return job

    def test_stale_catalogue_x_linked_etag(self):
        real = self.dl.files[f"{STALE}.gguf"][1]
        self.dl.control(announce="x-linked-etag")
        job = self.failed(STALE)
        self.assertEqual(job["diagnosis"], "catalogue_stale", job)
        self.assertIn(real, job["error"])
        self.assertIn("out of date", job["error"])

    def test_stale_catalogue_repr_digest(self):
        self.dl.control(announce="repr-digest")
        self.assertEqual(self.failed(STALE2)["diagnosis"], "catalogue_stale")

    def test_damaged_download(self):
        job = self.failed(DAMAGED)
        self.assertEqual(job["diagnosis"], "corrupt_download", job)
        self.dl.control(announce="digest")
        self.assertEqual(self.failed(DAMAGED)["diagnosis"], "catalogue_stale")


# File names a file system allows that are no model ids (bytes: not UTF-8).
ODD_NAMES = ["Mein Modell (Kopie) \u00e4\u00f6\u00fc.gguf", "x" * 200 + ".gguf",
             "with space.bin"]
LATIN1 = b"caf\xe9.gguf"


class CleanupTest(LifecycleCase):
    @classmethod
    def setUpClass(cls):
        files = {f"{ACTIVE}.gguf": 4 * MiB, "it-reg.gguf": 1 * MiB}

        def build(dl):
            cls.models = {m: (f"{m}.gguf", dl.files[f"{m}.gguf"][1]) for m in (ACTIVE, "it-reg")}
            return cls.gallery_of(dl)
        cls.start(build, files)

    def plant(self):
        s = self.stack
        for name in ODD_NAMES:
            s.write_file(f"models/llm/{name}", name.encode())
        with open(os.path.join(s.path("models", "llm").encode(), LATIN1), "wb") as f:
            f.write(b"latin1")
        s.write_file("models/.partial/it-left.gguf.part", b"p" * 1000)
        s.write_file("models/.partial/it-left.gguf.part.meta", b"{}")
        s.write_file("models/.partial/it-meta.gguf.part.meta", b'{"url": "x"}')
        s.write_file("config/models.json.tmp.4194303.1", b"a writer that died")

    def test_installed_list_shows_any_name(self):
        self.plant()
        models = self.installed()
        for name in ODD_NAMES:
            item = models.get(name)
            self.assertIsNotNone(item, f"{name!r} not listed: {sorted(models)}")
            self.assertEqual((item["status"], item["id_valid"]), ("unregistered", False), item)
            self.assertEqual(item["path"], f"models/llm/{name}", item)
            self.assertEqual(item["size"], len(name.encode()), item)
        shown = "caf\ufffd.gguf"
        self.assertEqual(models[shown]["path"], f"models/llm/{shown}", models[shown])
        self.assertEqual(models["it-left"]["status"], "partial", models["it-left"])
        self.assertEqual(models["it-left"]["size"], 1000, models["it-left"])
        self.post("/api/models/cleanup?include=unregistered", 200)

    def test_cleanup_removes_what_it_previewed(self):
        self.install("it-reg")
        self.dl.control(throttle=256 * 1024)
        job_id = self.post_install(ACTIVE)["job_id"]
        wait_until(lambda: self.partial_size(ACTIVE) > 0, 10 * SLOW, what="a partial")
        self.plant()
        r = self.stack.get("/api/models/cleanup")
        preview = self.assertJsonAnswer(r, 200)
        items = {(i["kind"], i["path"]): i for i in preview["items"]}
        want = {("unregistered", f"models/llm/{n}") for n in ODD_NAMES}
        want |= {("unregistered", "models/llm/caf\ufffd.gguf"),
                 ("partial", "models/.partial/it-left.gguf.part"),
                 ("orphan_meta", "models/.partial/it-meta.gguf.part.meta"),
                 ("temp", "config/models.json.tmp.4194303.1")}
        self.assertEqual(set(items), want, preview)
        self.assertEqual(items[("partial", "models/.partial/it-left.gguf.part")]["bytes"], 1002)
        self.assertEqual(preview["bytes"], sum(i["bytes"] for i in preview["items"]))
        for i in preview["items"]:
            self.assertIsInstance(i["age_s"], int, i)
            self.assertGreaterEqual(i["age_s"], 0, i)

        r, done = self.post("/api/models/cleanup", 200)
        expect = [i for i in preview["items"] if i["kind"] != "unregistered"]
        key = lambda i: (i["kind"], i["path"], i["bytes"])  # noqa: E731
        self.assertEqual(sorted(map(key, done["items"])), sorted(map(key, expect)), done)
        self.assertEqual(done["bytes"], sum(i["bytes"] for i in expect))
        self.assertEqual(done["failed"], [])
        for i in expect:
            self.assertFalse(os.path.exists(self.stack.path(i["path"])), i)
        self.assertTrue(self.partial_size(ACTIVE) > 0, "the running download's partial stays")
        self.assertEqual(self.installed()["it-reg"]["status"], "installed")
        for n in ODD_NAMES:
            self.assertTrue(os.path.exists(self.stack.path("models", "llm", n)))

        r, done = self.post("/api/models/cleanup?include=unregistered", 200)
        self.assertEqual({i["path"] for i in done["items"]},
                         {p for k, p in want if k == "unregistered"}, done)
        left = self.assertJsonAnswer(self.stack.get("/api/models/cleanup"), 200)
        self.assertEqual((left["items"], left["bytes"]), ([], 0), left)
        self.assertEqual(self.installed()["it-reg"]["status"], "installed")
        self.assertTrue(os.path.exists(self.llm_file("it-reg")))
        self.dl.control(throttle=0)
        self.assertEqual(self.wait_job(job_id)["status"], "installed")

    def test_cleanup_parameters(self):
        self.assertError(self.stack.post("/api/models/cleanup?include=everything"), 400,
                         "invalid_parameter", "include")
        self.assertError(self.stack.post("/api/models/cleanup?include=%zz"), 400,
                         "invalid_parameter", "include")
        self.assertError(self.stack.delete("/api/models/cleanup"), 405, "method_not_allowed", None,
                         "allowed: GET, HEAD, POST")
        r, body = self.post("/api/models/cleanup?include=", 200)
        self.assertEqual(set(body), {"items", "bytes", "failed", "node"})


if __name__ == "__main__":
    mgtest.main()
