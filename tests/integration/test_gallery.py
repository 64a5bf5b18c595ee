#!/usr/bin/env python3
"""test_gallery.py - GET /api/models/gallery: the validated payload, ETag/304, invalid models
left out and logged once, a gallery that is not JSON (last good served, error names file,
line and column), a corrupt, foreign or missing cache file (repaired within 3 s), and a
changed source (served within 3 s)."""

import copy
import os
import re
import time

import mgtest
from mgtest import SharedStackTestCase, load_fixture, wait_until

FIXTURE = load_fixture("gallery_it.json")
VALID_IDS = [
    "qwen2.5-coder-7b-instruct", "qwen2.5-0.5b-instruct", "gemma-2-27b-it",
    "llama-3.2-1b-instruct", "llama-3.1-8b-instruct", "mistral-7b-instruct-v0.2",
    "nomic-embed-text-v1.5", "whisper-base.en", "phi-3.5-mini-instruct",
    "deepseek-r1-distill-qwen-1.5b", "tinyllama-1.1b-chat", "starcoder2-3b", "minimal-model",
    "gemma-3-1b-it", "mixtral-8x7b-instruct",
]


def valid_models():
    seen, out = set(), []
    for m in FIXTURE["models"]:
        if isinstance(m, dict) and m.get("id") in VALID_IDS and m["id"] not in seen:
            seen.add(m["id"])
            out.append(dict(m, gallery="default"))  # answers name their source
    return out


def invalid_entries():
    """(index, id or None) of every invalid entry of the fixture."""
    seen, out = set(), []
    for i, m in enumerate(FIXTURE["models"]):
        mid = m.get("id") if isinstance(m, dict) else None
        if isinstance(m, dict) and mid in VALID_IDS and mid not in seen:
            seen.add(mid)
            continue
        out.append((i, mid))
    return out


def gallery_ok(stack, ids):
    """The gallery answer when it is valid JSON with exactly `ids`, else None."""
    r = stack.gallery()
    if r.status != 200:
        return None
    try:
        body = r.json
    except AssertionError:
        return None
    if [m.get("id") for m in body.get("models", [])] != ids:
        return None
    return r


class GalleryReadTest(SharedStackTestCase):
    def test_payload(self):
        r = self.stack.gallery()
        body = self.assertJsonAnswer(r, 200)
        self.assertEqual(set(body), {"version", "generatedAt", "models"})
        self.assertEqual(body["version"], 1)
        self.assertEqual(body["generatedAt"], "2025-01-01T00:00:00Z")
        # every valid model whole, in the source's order; no invalid one
        self.assertEqual(body["models"], valid_models())

    def test_etag_and_304(self):
        r = self.stack.gallery()
        self.assertEqual(r.status, 200)
        etag = r.header("etag")
        self.assertTrue(etag, f"no ETag: {r.headers}")
        r2 = self.stack.get("/api/models/gallery", {"If-None-Match": etag})
        self.assertEqual(r2.status, 304, r2)
        self.assertEqual(r2.body, b"")
        self.assertEqual(r2.header("etag"), etag)
        r3 = self.stack.get("/api/models/gallery", {"If-None-Match": '"something-else"'})
        self.assertEqual(r3.status, 200)
        self.assertEqual(r3.body, r.body)
        # a list of tags holding ours
        r4 = self.stack.get("/api/models/gallery", {"If-None-Match": f'"x", {etag}'})
        self.assertEqual(r4.status, 304)

    def test_head(self):
        r = self.stack.head("/api/models/gallery")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")
        self.assertTrue(r.header("content-type", "").startswith("application/json"))
        self.assertTrue(r.header("etag"))

    def test_query_string_ignored(self):
        r = self.stack.get("/api/models/gallery?x=1")
        body = self.assertJsonAnswer(r, 200)
        self.assertEqual(len(body["models"]), 15)

    def test_invalid_models_never_in_answers(self):
        body = self.stack.gallery().json
        names = [m["name"] for m in body["models"]]
        self.assertNotIn("DUPLICATE of an earlier id", names)
        ids = [m["id"] for m in body["models"]]
        for bad in ("../evil", "bad-checksum", "bad-url", "zero-size", "rating-too-high",
                    "bad-tags", "low-ram", "empty-name", "no-checksum", "x" * 130):
            self.assertNotIn(bad, ids)
        s = self.stack.search({"limit": 1000}).json
        self.assertEqual(s["total"], 15)
        self.assertNotIn("DUPLICATE of an earlier id", [m["name"] for m in s["models"]])
        h = self.assertJsonAnswer(self.stack.get("/api/models/health"), 200)
        self.assertEqual(h["gallery_models"], 15)

    def test_invalid_models_logged_once_with_index_and_id(self):
        # a few more requests must not log them again
        for _ in range(3):
            self.stack.search({"query": "qwen"})
            self.stack.gallery()
        time.sleep(0.3)
        lines = self.stack.logs().splitlines()
        for index, mid in invalid_entries():
            with self.subTest(index=index, id=mid):
                idx_re = re.compile(rf"(?<![\w.:-]){index}(?![\w.:-])")
                if mid:
                    hits = [ln for ln in lines if mid[:60] in ln and idx_re.search(ln)]
                else:
                    hits = [ln for ln in lines if re.search(
                        rf"(model|index|entry|item|#|\[)\s*{index}\b", ln, re.I)]
                self.assertEqual(len(hits), 1, f"log lines for invalid model {index} ({mid}):"
                                 f" {hits}\n--- logs ---\n" + "\n".join(lines[-60:]))


class GalleryChangeTest(SharedStackTestCase):
    """Tests that change files of the root; each leaves the good fixture in place."""

    def tearDown(self):
        self.stack.write_gallery("gallery_it.json")
        wait_until(lambda: gallery_ok(self.stack, VALID_IDS), 5, what="the fixture served again")

    def test_corrupt_cache_repaired(self):
        self.assertTrue(gallery_ok(self.stack, VALID_IDS))
        self.stack.write_file("cache/gallery_cache.json", b"\x00garbage{{{ not json")
        t0 = time.monotonic()
        wait_until(lambda: gallery_ok(self.stack, VALID_IDS), 10.0,
                   what="a valid gallery after the cache was corrupted")
        # search works meanwhile too
        r = self.stack.search({"query": "qwen"})
        self.assertEqual(self.assertJsonAnswer(r, 200)["total"], 3)
        self.assertLessEqual(time.monotonic() - t0, 3.5)

    def test_foreign_cache_replaced(self):
        self.stack.write_file("cache/gallery_cache.json",
                              '{"version":99,"generatedAt":null,"models":[]}\n')
        wait_until(lambda: gallery_ok(self.stack, VALID_IDS), 10.0,
                   what="the gallery after a foreign cache file was written")

    def test_truncated_cache_repaired(self):
        with open(self.stack.path("cache", "gallery_cache.json"), "rb") as f:
            data = f.read()
        self.stack.write_file("cache/gallery_cache.json", data[: len(data) // 2])
        wait_until(lambda: gallery_ok(self.stack, VALID_IDS), 10.0,
                   what="the gallery after the cache was truncated")
        r = self.stack.search({"limit": 1000})
        self.assertEqual(self.assertJsonAnswer(r, 200)["total"], 15)

    def test_missing_cache(self):
        os.unlink(self.stack.path("cache", "gallery_cache.json"))
        # nginx falls back to mg-fcgi, which rebuilds or serves it
        wait_until(lambda: gallery_ok(self.stack, VALID_IDS), 10.0,
                   what="the gallery after the cache file was removed")

    def test_source_change_served(self):
        r0 = self.stack.gallery()
        etag0 = r0.header("etag")
        doc = copy.deepcopy(FIXTURE)
        doc["models"] = [m for m in valid_models() if m["id"] in ("gemma-3-1b-it", "starcoder2-3b")]
        doc["version"] = 2
        self.stack.write_gallery(doc)
        # a search notices the change at once (a stat per request); the gallery within 3 s
        r = self.stack.search({"limit": 1000})
        self.assertEqual([m["id"] for m in r.json["models"]], ["gemma-3-1b-it", "starcoder2-3b"])
        # the gallery keeps the source's order
        r = wait_until(lambda: gallery_ok(self.stack, ["starcoder2-3b", "gemma-3-1b-it"]), 10.0,
                       what="the changed gallery")
        self.assertEqual(r.json["version"], 2)
        self.assertNotEqual(r.header("etag"), etag0)
        r2 = self.stack.get("/api/models/gallery", {"If-None-Match": etag0})
        self.assertEqual(r2.status, 200)

    def test_not_json_keeps_last_good(self):
        self.assertTrue(gallery_ok(self.stack, VALID_IDS))
        self.stack.write_gallery('{"version": 1,\n "models": [\n  {"id": "a", "name": }\n')
        # requests meanwhile still answer the last good gallery
        for _ in range(5):
            r = self.stack.search({"limit": 1000})
            self.assertEqual(self.assertJsonAnswer(r, 200)["total"], 15)
            self.assertTrue(gallery_ok(self.stack, VALID_IDS))
            time.sleep(0.1)

        def logged():
            for ln in self.stack.logs().splitlines():
                if "models_gallery.json" in ln and re.search(r"line\s*3\b", ln) and \
                        re.search(r"col(umn)?\s*\d+", ln):
                    return ln
            return None
        ln = wait_until(logged, 10.0, what="a log line naming the file, line 3 and a column")
        self.assertIn("config/models_gallery.json", ln)
        self.assertTrue(gallery_ok(self.stack, VALID_IDS))
        h = self.assertJsonAnswer(self.stack.get("/api/models/health"), 200)
        self.assertEqual(h["status"], "ok")


if __name__ == "__main__":
    mgtest.main()
