#!/usr/bin/env python3
"""test_mirrors.py - a model's mirrors and server.json's url_rewrites, through the real stack
and real download servers (dlserver.py, one process per host):

- the first URL answers 404, drops the connection, answers 503 or stalls: the next mirror
  finishes the file with the right SHA-256; the bytes already downloaded are not fetched
  again (the mirror gets one Range request from where the partial stands); the job and its
  progress messages say which URL served the bytes (source_url);
- every URL fails: the job fails with the last URL's error and nothing is installed;
- a host that failed twice in a row is skipped by the next job while it has a mirror;
- a rewrite sends the download to the rewritten host: the original host gets no request."""

import os

import mgtest
from mgtest import Stack
from test_install import MiB, DlServer, InstallCase, gallery, model

FILES = {"m-404.gguf": 2 * MiB, "m-drop.gguf": 3 * MiB, "m-503.gguf": 1 * MiB,
         "m-stall.gguf": 1 * MiB, "m-all.gguf": 256 * 1024, "m-skip1.gguf": 64 * 1024,
         "m-skip2.gguf": 64 * 1024, "m-skip3.gguf": 64 * 1024, "m-rw.gguf": 1 * MiB}
CUT = 512 * 1024


class MirrorTest(InstallCase):
    @classmethod
    def setUpClass(cls):
        # the mirror holds every file; each failing first host has a server of its own, so
        # that one test's failures do not make another's host skipped
        cls.dl = DlServer()
        cls.addClassCleanup(cls.dl.stop)
        for name, size in FILES.items():
            cls.dl.add_random(name, size)
        cls.hosts = {}
        for key in ("404", "drop", "503", "stall", "all", "all2", "skip", "rw"):
            srv = DlServer()
            cls.addClassCleanup(srv.stop)
            cls.hosts[key] = srv
        for key, name in (("drop", "m-drop.gguf"), ("stall", "m-stall.gguf")):
            with open(os.path.join(cls.dl.dir, name), "rb") as f:
                data = f.read()
            with open(os.path.join(cls.hosts[key].dir, name), "wb") as f:
                f.write(data)
        rw = cls.hosts["rw"]
        cls.stack = Stack(gallery=gallery(cls.models()), env={
            "MG_RETRY_BASE_MS": "100", "MG_RETRY_MAX": "2", "MG_STALL_SECONDS": "2"},
            server={"allow_http": True, "url_rewrites": [
                {"prefix": "http://127.0.0.1:1/never/", "replace": "http://127.0.0.1:1/"},
                {"prefix": rw.url(""), "replace": cls.dl.url("")}]})
        cls.addClassCleanup(cls.stack.stop)

    @classmethod
    def models(cls):
        def m(mid, first, mirrors):
            size, digest = cls.dl.files[f"{mid}.gguf"]
            return model(mid, first.url(f"{mid}.gguf"), digest, size,
                         mirrors=[s.url(f"{mid}.gguf") for s in mirrors])
        h = cls.hosts
        out = [m("m-404", h["404"], [cls.dl]), m("m-drop", h["drop"], [cls.dl]),
               m("m-503", h["503"], [cls.dl]), m("m-stall", h["stall"], [cls.dl]),
               m("m-all", h["all"], [h["all2"]]), m("m-rw", h["rw"], [])]
        out += [m(f"m-skip{i}", h["skip"], [cls.dl]) for i in (1, 2, 3)]
        return out

    def setUp(self):
        self.dl.defaults()
        for srv in self.hosts.values():
            srv.defaults()

    def assertServedBy(self, mid, job, srv):
        self.assertInstalled(mid, f"{mid}.gguf", job)
        self.assertEqual(job["source_url"], srv.url(f"{mid}.gguf"), job)

    def test_404_then_mirror(self):
        job = self.install("m-404")
        self.assertServedBy("m-404", job, self.dl)
        self.assertEqual(self.hosts["404"].path_stats("m-404.gguf")["requests"], 1)
        st = self.dl.stats()
        self.assertEqual(st["paths"]["/m-404.gguf"]["requests"], 1, st)
        self.assertEqual(st["ranges"], [], "the mirror sends the whole file")

    def test_drop_then_mirror_resumes(self):
        first = self.hosts["drop"]
        first.control(drop_first=1, drop_after=CUT)
        job = self.install("m-drop")
        self.assertServedBy("m-drop", job, self.dl)
        self.assertEqual(first.path_stats("m-drop.gguf")["requests"], 1)
        st = self.dl.stats()
        self.assertEqual(st["ranges"], [f"bytes={CUT}-"], "resumed where the first host stopped")
        self.assertEqual(st["paths"]["/m-drop.gguf"]["bytes"], FILES["m-drop.gguf"] - CUT,
                         "the bytes already downloaded are not fetched again")

    def test_503_then_mirror(self):
        first = self.hosts["503"]
        first.control(fail_first=100, fail_status=503)
        job = self.install("m-503")
        self.assertServedBy("m-503", job, self.dl)
        self.assertEqual(first.stats()["statuses"].get("503"), 1, first.stats())

    def test_stall_then_mirror_resumes(self):
        first = self.hosts["stall"]
        first.control(throttle=1)  # a byte a second: stalled after MG_STALL_SECONDS
        job = self.install("m-stall", timeout=40)
        self.assertServedBy("m-stall", job, self.dl)
        got = first.path_stats("m-stall.gguf")["bytes"]
        st = self.dl.stats()
        mirror_bytes = st["paths"]["/m-stall.gguf"]["bytes"]
        self.assertGreater(got, 0, "the first host sent a few bytes")
        self.assertEqual(len(st["ranges"]), 1, st)
        start = int(st["ranges"][0][len("bytes="):-1])
        self.assertLessEqual(start, got, st)
        self.assertEqual(start + mirror_bytes, FILES["m-stall.gguf"],
                         "the mirror sends only what is missing")

    def test_every_url_fails(self):
        job = self.wait_job(self.post_install("m-all")["job_id"])
        self.assertEqual(job["status"], "failed", job)
        self.assertEqual(job["error_code"], "http_404", job)
        self.assertIn(self.hosts["all2"].url("m-all.gguf"), job["error"])
        for key in ("all", "all2"):
            self.assertEqual(self.hosts[key].path_stats("m-all.gguf")["requests"], 1)
        self.assertNothingLeft("m-all")

    def test_failing_host_is_skipped(self):
        skip = self.hosts["skip"]
        skip.control(fail_first=100, fail_status=503)
        for mid in ("m-skip1", "m-skip2"):
            self.assertServedBy(mid, self.install(mid), self.dl)
            self.assertEqual(skip.path_stats(f"{mid}.gguf")["requests"], 1)
        self.assertServedBy("m-skip3", self.install("m-skip3"), self.dl)
        self.assertEqual(skip.path_stats("m-skip3.gguf")["requests"], 0,
                         "a host that failed twice in a row is skipped")

    def test_rewrite_sends_to_the_other_host(self):
        job = self.install("m-rw")
        self.assertServedBy("m-rw", job, self.dl)
        self.assertEqual(self.hosts["rw"].stats()["file_requests"], 0)
        self.assertEqual(self.dl.path_stats("m-rw.gguf")["requests"], 1)


if __name__ == "__main__":
    mgtest.main()
