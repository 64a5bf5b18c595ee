#!/usr/bin/env python3
"""test_scale.py - the cache at scale against the real stack (a generated gallery):

- the gallery is served gzip-compressed (its .gz written with the cache, gzip_static) to
  clients that accept it, with its own ETag and 304; large search answers are compressed;
- a cache replaced while clients search is picked up by every worker, each mapping the new
  index file (no worker parses the gallery), with no failed request and no answer mixing
  the two galleries;
- a deleted or corrupted index or gzip copy is derived again while searches keep working.
"""

import gzip
import http.client
import json
import os
import subprocess
import sys
import threading
import time

import mgtest
from mgtest import REPO, Stack, StackTestCase, proc_stat, wait_until

GEN = os.path.join(REPO, "bench", "gen_gallery.py")
SEARCH = "/api/models/gallery/search?sort=name&limit=20"
FACETS = "/api/models/gallery/facets?category=chat"


def generate(n, seed):
    out = subprocess.run([sys.executable, GEN, str(n), "--seed", str(seed)], check=True,
                         stdout=subprocess.PIPE).stdout
    return out.decode(), {m["id"] for m in json.loads(out)["models"]}


def workers(stack):
    master = stack.pid("fcgi")
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and
            (proc_stat(int(p)) or ("", 0))[1] == master]


def mapped_index_inodes(pid):
    """Inodes of gallery_cache.index files that process `pid` maps."""
    with open(f"/proc/{pid}/maps") as f:
        return {int(ln.split()[4]) for ln in f if "gallery_cache.index" in ln}


class Searcher(threading.Thread):
    """Searches in a loop over one keep-alive connection, recording every answer."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.answers, self.stop = port, [], threading.Event()

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self.stop.is_set():
            try:
                conn.request("GET", SEARCH)
                r = conn.getresponse()
                body = r.read()
                try:
                    doc = json.loads(body)
                    self.answers.append((r.status, doc.get("total"),
                                         [m["id"] for m in doc.get("models", [])]))
                except ValueError:
                    self.answers.append((r.status, None, body[:200]))
            except (OSError, http.client.HTTPException) as e:
                self.answers.append((0, None, repr(e)))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.close()


class ScaleTest(StackTestCase):
    @classmethod
    def setUpClass(cls):
        text, cls.ids_a = generate(1500, 1)
        cls.stack = Stack(gallery=text)

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def total(self):
        return self.assertJsonAnswer(self.stack.search({"limit": 1}), 200)["total"]

    def test_gallery_gzip_static(self):
        plain = self.stack.get("/api/models/gallery")
        self.assertEqual(plain.status, 200)
        self.assertIsNone(plain.header("content-encoding"))
        r = self.stack.get("/api/models/gallery", headers={"Accept-Encoding": "gzip"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-encoding"), "gzip")
        self.assertIn("Accept-Encoding", r.header("vary", ""))
        self.assertLess(len(r.body), len(plain.body) / 3)
        self.assertEqual(gzip.decompress(r.body), plain.body)
        with open(self.stack.path("cache", "gallery_cache.json"), "rb") as f:
            self.assertEqual(plain.body, f.read())
        etag = r.header("etag")
        self.assertTrue(etag)
        r304 = self.stack.get("/api/models/gallery",
                              headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
        self.assertEqual(r304.status, 304)
        self.assertEqual(r304.body, b"")

    def test_large_search_answers_compressed(self):
        hdr = {"Accept-Encoding": "gzip"}
        plain = self.assertJsonAnswer(self.stack.get(SEARCH.replace("20", "100")), 200)
        r = self.stack.get(SEARCH.replace("20", "100"), headers=hdr)
        self.assertEqual(r.header("content-encoding"), "gzip")
        self.assertEqual(json.loads(gzip.decompress(r.body)), plain)
        small = self.stack.get("/api/models/gallery/search?limit=1", headers=hdr)
        self.assertIsNone(small.header("content-encoding"))  # below gzip_min_length
        facets = self.stack.get("/api/models/gallery/facets?facet_limit=1000", headers=hdr)
        self.assertEqual(facets.status, 200)
        # an answer of many FastCGI records (about 900 KB) is whole, compressed or not
        big = self.assertJsonAnswer(self.stack.get(SEARCH.replace("20", "1000")), 200)
        self.assertEqual(len(big["models"]), 1000)
        r = self.stack.get(SEARCH.replace("20", "1000"), headers=hdr)
        self.assertEqual(json.loads(gzip.decompress(r.body)), big)
        halves = [self.assertJsonAnswer(self.stack.get(SEARCH.replace("20", f"500&offset={o}")),
                                        200)["models"] for o in (0, 500)]
        self.assertEqual(halves[0] + halves[1], big["models"])

    def test_cache_replaced_under_load(self):
        text_b, ids_b = generate(1800, 2)
        total_a = self.total()
        self.assertEqual(total_a, len(self.ids_a))
        for _ in range(10):  # facets answered (and kept by the workers) for this gallery
            self.assertEqual(self.stack.get(FACETS).status, 200)
        searchers = [Searcher(self.stack.port) for _ in range(4)]
        for s in searchers:
            s.start()
        time.sleep(0.5)
        self.stack.write_gallery(text_b)
        index = self.stack.path("cache", "gallery_cache.index")

        def switched():
            return all(s.answers and s.answers[-1][1] == len(ids_b) for s in searchers) and \
                os.path.exists(index)
        wait_until(switched, 20, what="every searcher to see the new gallery")
        time.sleep(0.5)
        for s in searchers:
            s.stop.set()
        for s in searchers:
            s.join(10)
        answers = [a for s in searchers for a in s.answers]
        self.assertGreater(len(answers), 50)
        for status, total, ids in answers:
            self.assertEqual(status, 200, (status, total, ids))
            self.assertIn(total, (len(self.ids_a), len(ids_b)))
            expected = self.ids_a if total == len(self.ids_a) else ids_b
            self.assertTrue(set(ids) <= expected, f"an answer mixing the galleries: {ids}")
        # every worker maps the new index file (and no other), after serving a request; the
        # facets a worker answered for the old gallery are not served for the new one
        for _ in range(20):
            self.assertEqual(self.total(), len(ids_b))
            f = self.assertJsonAnswer(self.stack.get(FACETS), 200)
            chat = self.assertJsonAnswer(self.stack.search({"category": "chat", "limit": 1}), 200)
            self.assertEqual(f["total"], chat["total"])
            self.assertEqual(sum(v["count"] for v in f["facets"]["category"] if v["value"] == "chat"),
                             self.assertJsonAnswer(self.stack.search(
                                 {"category": "chat", "limit": 1}), 200)["total"])
        inode = os.stat(index).st_ino
        pids = workers(self.stack)
        self.assertTrue(pids)
        for pid in pids:
            self.assertEqual(mapped_index_inodes(pid), {inode}, f"worker {pid}")
        self.__class__.ids_a = ids_b  # the next test starts from this gallery

    def test_derived_files_repaired(self):
        total = self.total()
        index = self.stack.path("cache", "gallery_cache.index")
        gz = self.stack.path("cache", "gallery_cache.json.gz")
        before = os.stat(index).st_ino
        os.unlink(index)
        wait_until(lambda: os.path.exists(index) and os.stat(index).st_ino != before, 5,
                   what="the index to be derived again")
        self.assertEqual(self.total(), total)
        with open(gz, "r+b") as f:  # corrupted in place
            f.seek(100)
            f.write(b"\0" * 64)
        wait_until(lambda: gzip.decompress(open(gz, "rb").read()) ==
                   open(self.stack.path("cache", "gallery_cache.json"), "rb").read(), 5,
                   what="the gzip copy to be derived again")
        # an index corrupted in place but keeping its size and mtime is refused by readers
        # and derived again when one needs it (a new worker maps it at its first request)
        st = os.stat(index)
        with open(index, "r+b") as f:
            f.seek(st.st_size // 2)
            b = f.read(1)
            f.seek(st.st_size // 2)
            f.write(bytes([b[0] ^ 0x55]))
        os.utime(index, ns=(st.st_atime_ns, st.st_mtime_ns))
        for pid in workers(self.stack):
            os.kill(pid, 9)
        wait_until(lambda: self.stack.search({"limit": 1}).status == 200, 10,
                   what="searches to answer after the workers restarted")
        self.assertEqual(self.total(), total)
        self.assertNotEqual(os.stat(index).st_ino, st.st_ino)
        self.assertIn("search index", self.stack.logs())


if __name__ == "__main__":
    mgtest.main()
