#!/usr/bin/env python3
"""test_registry.py - GET /api/models/installed (statuses installed, missing, unregistered;
a partial download without a job shows as partial), DELETE /api/models/{id}, ids that try to
leave models/llm (../, %2F, NUL, 300 characters: 400 JSON and nothing touched), and
api_token. The lifecycle statuses (corrupt, names that are no ids, updates): test_lifecycle.py."""

import os

import mgtest
from mgtest import SharedStackTestCase, Stack, StackTestCase, load_fixture

INSTALLED = "qwen2.5-0.5b-instruct"
MISSING = "gemma-3-1b-it"
ORPHAN = "orphan-model"
PARTIAL = "tinyllama-1.1b-chat"
FILE_BYTES = b"GGUF" + bytes(range(256)) * 16


def entry(mid, name, size):
    return {"id": mid, "name": name, "path": f"models/llm/{mid}.gguf", "size": size,
            "installedAt": "2025-01-02T03:04:05+00:00", "backend": "gallery", "active": True}


def registry():
    return {"models": {
        INSTALLED: entry(INSTALLED, "Qwen2.5 0.5B Instruct", len(FILE_BYTES)),
        MISSING: entry(MISSING, "Gemma 3 1B IT", 123456),
    }}


def bad_id_error(bad, code="invalid_model_id", parameter="id"):
    """(code, parameter) of the 400 for the malformed id `bad` (a raw path segment): nginx
    refuses a path holding %00 itself (bad_request); mg-fcgi names the id otherwise."""
    return ("bad_request", None) if "%00" in bad else (code, parameter)


BAD_IDS = [
    "..%2F..%2Fconfig%2Fmodels.json",
    "..%2Fsecret",
    "%2E%2E%2Fsecret",
    "%2E%2E",
    "..",
    "a%2Fb",
    "%2Fetc%2Fpasswd",
    ".hidden",
    "-leading-dash",
    "a%00b",
    "%00",
    "a" * 300,
    "a" * 129,
    "a%20b",
    "a%5Cb",
    "%C3%A9t%C3%A9",
    "a%25b",
]


class RegistryTest(SharedStackTestCase):
    def setUp(self):
        s = self.stack
        s.write_json("config/models.json", registry())
        for name in os.listdir(s.path("models", "llm")):
            os.unlink(s.path("models", "llm", name))
        s.write_file(f"models/llm/{INSTALLED}.gguf", FILE_BYTES)
        s.write_file(f"models/llm/{ORPHAN}.gguf", b"orphan bytes")
        s.write_file(f"models/.partial/{PARTIAL}.gguf.part", b"half a model")
        s.write_file("secret.gguf", b"must survive")
        s.write_file("models/secret", b"must survive")

    def installed(self):
        return self.assertJsonAnswer(self.stack.get("/api/models/installed"), 200)

    def assert_untouched(self):
        s = self.stack
        for rel in ("secret.gguf", "models/secret", "config/models.json",
                    "config/models_gallery.json", f"models/llm/{INSTALLED}.gguf",
                    f"models/llm/{ORPHAN}.gguf"):
            self.assertTrue(os.path.exists(s.path(rel)), f"{rel} was removed")
        self.assertEqual(set(s.read_json("config/models.json")["models"]), {INSTALLED, MISSING})

    # --- statuses ---

    def test_statuses(self):
        body = self.installed()
        self.assertEqual(set(body), {"models", "node"})
        models = body["models"]
        self.assertEqual(set(models), {INSTALLED, MISSING, ORPHAN, PARTIAL}, models)
        inst = models[INSTALLED]
        self.assertEqual(inst["status"], "installed")
        want = entry(INSTALLED, "Qwen2.5 0.5B Instruct", len(FILE_BYTES))
        for k, v in want.items():
            self.assertEqual(inst.get(k), v, f"{k} of {inst}")
        self.assertEqual(models[MISSING]["status"], "missing")
        self.assertEqual(models[MISSING]["id"], MISSING)
        orphan = models[ORPHAN]
        self.assertEqual(orphan["status"], "unregistered")
        self.assertEqual(orphan["id"], ORPHAN)
        self.assertEqual(orphan["path"], f"models/llm/{ORPHAN}.gguf")
        self.assertEqual(orphan["size"], len(b"orphan bytes"))
        # entries that record no checksum (v1) and files without an entry have no update; the
        # gallery's checksum is shown whenever the gallery has the model
        sums = {m["id"]: m["checksum"] for m in load_fixture("gallery_it.json")["models"]
                if isinstance(m, dict) and "id" in m and "checksum" in m}
        for mid in (INSTALLED, MISSING, ORPHAN, PARTIAL):
            self.assertIs(models[mid]["update_available"], False, models[mid])
            self.assertEqual(models[mid]["latest_checksum"], sums.get(mid), models[mid])
        self.assertIsNotNone(models[INSTALLED]["latest_checksum"])

    def test_partial_download_without_job_shows_as_partial(self):
        part = self.installed()["models"][PARTIAL]
        self.assertEqual(part["status"], "partial", part)
        self.assertEqual(part["path"], f"models/.partial/{PARTIAL}.gguf.part", part)
        self.assertEqual(part["size"], len(b"half a model"), part)
        self.assertIsNone(part["installedAt"], part)

    def test_registry_file_unchanged_by_reads(self):
        with open(self.stack.path("config", "models.json"), "rb") as f:
            before = f.read()
        self.installed()
        with open(self.stack.path("config", "models.json"), "rb") as f:
            self.assertEqual(f.read(), before)
        self.assertNotIn("status", self.stack.read_json("config/models.json")["models"][INSTALLED])

    def test_empty_registry(self):
        os.unlink(self.stack.path("config", "models.json"))
        for name in os.listdir(self.stack.path("models", "llm")):
            os.unlink(self.stack.path("models", "llm", name))
        os.unlink(self.stack.path("models", ".partial", f"{PARTIAL}.gguf.part"))
        body = self.installed()
        self.assertEqual(body["models"], {})
        self.assertRegex(body["node"], r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # the host name

    def test_file_removed_behind_our_back(self):
        os.unlink(self.stack.path("models", "llm", f"{INSTALLED}.gguf"))
        self.assertEqual(self.installed()["models"][INSTALLED]["status"], "missing")

    # --- delete ---

    def test_delete_installed(self):
        r = self.stack.delete(f"/api/models/{INSTALLED}")
        self.assertEqual(self.assertJsonAnswer(r, 200), {"deleted": INSTALLED, "file_removed": True})
        self.assertFalse(os.path.exists(self.stack.path("models", "llm", f"{INSTALLED}.gguf")))
        self.assertNotIn(INSTALLED, self.stack.read_json("config/models.json")["models"])
        self.assertIn(MISSING, self.stack.read_json("config/models.json")["models"])
        self.assertNotIn(INSTALLED, self.installed()["models"])
        r = self.stack.delete(f"/api/models/{INSTALLED}")
        self.assertError(r, 404, "not_found", "id", INSTALLED)

    def test_delete_missing(self):
        r = self.stack.delete(f"/api/models/{MISSING}")
        self.assertEqual(self.assertJsonAnswer(r, 200), {"deleted": MISSING, "file_removed": False})
        self.assertNotIn(MISSING, self.stack.read_json("config/models.json")["models"])
        self.assertTrue(os.path.exists(self.stack.path("models", "llm", f"{INSTALLED}.gguf")))

    def test_delete_unregistered(self):
        r = self.stack.delete(f"/api/models/{ORPHAN}")
        self.assertEqual(self.assertJsonAnswer(r, 200), {"deleted": ORPHAN, "file_removed": True})
        self.assertFalse(os.path.exists(self.stack.path("models", "llm", f"{ORPHAN}.gguf")))
        self.assertNotIn(ORPHAN, self.installed()["models"])

    def test_delete_unknown(self):
        self.assertError(self.stack.delete("/api/models/nothing-here"), 404, "not_found", "id",
                         "nothing-here")
        self.assert_untouched()

    def test_delete_partial(self):
        # the list shows a partial download under its id: DELETE removes what it shows
        r = self.stack.delete(f"/api/models/{PARTIAL}")
        self.assertEqual(self.assertJsonAnswer(r, 200), {"deleted": PARTIAL, "file_removed": True})
        self.assertFalse(os.path.exists(self.stack.path("models", ".partial",
                                                        f"{PARTIAL}.gguf.part")))
        self.assertNotIn(PARTIAL, self.installed()["models"])
        self.assert_untouched()

    def test_delete_bad_ids(self):
        for bad in BAD_IDS:
            with self.subTest(id=bad):
                r = self.stack.delete(f"/api/models/{bad}")
                self.assertError(r, 400, *bad_id_error(bad))
        self.assert_untouched()

    def test_delete_literal_dot_segments(self):
        # passed on unresolved, dot segments are refused as ids; nothing is removed
        for path in ("/api/models/../secret.gguf", "/api/models/../../secret.gguf",
                     "/api/models/./orphan-model/..", "/api/models/%2e%2e/%2e%2e/secret.gguf"):
            with self.subTest(path=path):
                r = self.stack.delete(path)
                self.assertError(r, 400, "invalid_model_id", "id", "'..' are not path segments")
        self.assert_untouched()

    # --- install and job ids are checked the same way ---

    def test_install_bad_ids(self):
        for bad in BAD_IDS:
            with self.subTest(id=bad):
                r = self.stack.post(f"/api/models/gallery/{bad}/install")
                self.assertError(r, 400, *bad_id_error(bad))
        jobs = self.stack.path("jobs")
        made = [n for n in os.listdir(jobs) if n.endswith(".json")] if os.path.isdir(jobs) else []
        self.assertEqual(made, [], "a malformed id made a job")
        self.assert_untouched()

    def test_install_unknown_id(self):
        self.assertError(self.stack.post("/api/models/gallery/not-in-gallery/install"), 404,
                         "model_not_found", "id", "not-in-gallery")

    def test_job_bad_ids(self):
        for bad in ("..%2Fx", "..", "ABCDEF0123456789", "0123", "0123456789abcdef0",
                    "%00", "a" * 300):
            with self.subTest(id=bad):
                self.assertError(self.stack.get(f"/api/models/jobs/{bad}"), 400,
                                 *bad_id_error(bad, "invalid_job_id", "job_id"))
        self.assertError(self.stack.get("/api/models/jobs/0123456789abcdef"), 404,
                         "job_not_found", "job_id")


class TokenTest(StackTestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(gallery="gallery_it.json", server={"api_token": "s3cret-token"},
                          registry=registry())

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def test_delete_needs_token(self):
        s = self.stack
        s.write_file(f"models/llm/{INSTALLED}.gguf", FILE_BYTES)
        self.assertError(s.delete(f"/api/models/{INSTALLED}"), 401, "unauthorized", None)
        self.assertError(s.delete(f"/api/models/{INSTALLED}",
                                  {"Authorization": "Bearer wrong"}), 401, "unauthorized", None)
        self.assertError(s.delete(f"/api/models/{INSTALLED}",
                                  {"Authorization": "Basic czNjcmV0LXRva2Vu"}), 401,
                         "unauthorized", None)
        self.assertTrue(os.path.exists(s.path("models", "llm", f"{INSTALLED}.gguf")))
        r = s.delete(f"/api/models/{INSTALLED}", {"Authorization": "Bearer s3cret-token"})
        self.assertEqual(self.assertJsonAnswer(r, 200)["deleted"], INSTALLED)

    def test_install_needs_token(self):
        self.assertError(self.stack.post("/api/models/gallery/minimal-model/install"), 401,
                         "unauthorized", None)

    def test_reads_need_no_token(self):
        self.assertJsonAnswer(self.stack.get("/api/models/installed"), 200)
        self.assertJsonAnswer(self.stack.search({"query": "qwen"}), 200)
        self.assertJsonAnswer(self.stack.gallery(), 200)


if __name__ == "__main__":
    mgtest.main()
