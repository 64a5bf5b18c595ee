#!/usr/bin/env python3
"""test_install_bytes.py - what each install costs in bytes, counted by the download server
(dlserver.py) through the real stack: a fresh install is served exactly its size, once and
without Range; a partial left by an earlier run (its meta naming the same URL and checksum)
is resumed for exactly the missing bytes, with If-Range when it knows the server's ETag; a
partial whose meta names another checksum or another URL, or that has no meta, is thrown
away and the file served whole exactly once (the planted bytes are the right ones, so only
the count tells a wrong resume apart); a kill -9 mid-download costs, once the daemon runs
again, exactly the bytes the partial lacked. (A verified file already in place costs nothing:
test_install_faults.py.) Helpers: test_install.py."""

import json
import os
import time

import mgtest
from mgtest import alive, wait_until
from test_install import SLOW, InstallCase, MiB, model

FRESH = "by-fresh"
RESUME = "by-resume"
RESUME_ETAG = "by-resume-etag"
OTHER_SUM = "by-other-checksum"
OTHER_URL = "by-other-url"
NO_META = "by-no-meta"
KILLED = "by-killed"
IDS = (FRESH, RESUME, RESUME_ETAG, OTHER_SUM, OTHER_URL, NO_META, KILLED)
SIZE = 2 * MiB + 4321


def byte_models(dl):
    return [model(m, dl.url(f"{m}.gguf"), dl.files[f"{m}.gguf"][1], dl.files[f"{m}.gguf"][0])
            for m in IDS]


class ByteAccountingTest(InstallCase):
    @classmethod
    def setUpClass(cls):
        cls.start(byte_models, {f"{m}.gguf": SIZE for m in IDS})

    def served(self, mid):
        return self.dl.path_stats(f"{mid}.gguf")

    def file_bytes(self, mid):
        with open(os.path.join(self.dl.dir, f"{mid}.gguf"), "rb") as f:
            return f.read()

    def etag(self, mid):
        """The ETag dlserver sends for the file (inode, size and mtime, as it makes them)."""
        st = os.stat(os.path.join(self.dl.dir, f"{mid}.gguf"))
        return '"%x-%x-%x"' % (st.st_ino, st.st_size, st.st_mtime_ns)

    def plant(self, mid, nbytes, meta):
        """A partial of the file's first `nbytes` bytes with `meta` (None: no meta), owned
        like models/.partial (the user the stack runs as)."""
        owner = os.stat(self.stack.path("models", ".partial"))
        files = [(f"models/.partial/{mid}.gguf.part", self.file_bytes(mid)[:nbytes])]
        if meta is not None:
            files.append((f"models/.partial/{mid}.gguf.part.meta", json.dumps(meta)))
        for rel, data in files:
            os.chown(self.stack.write_file(rel, data), owner.st_uid, owner.st_gid)

    def meta(self, mid, **changes):
        size, digest = self.dl.files[f"{mid}.gguf"]
        m = {"url": self.dl.url(f"{mid}.gguf"), "checksum": "sha256:" + digest, "validator": ""}
        m.update(changes)
        return m

    def assertServedOnce(self, mid, nbytes, range_start=None, if_range=None):
        """One request for `mid`, `nbytes` body bytes; a Range from `range_start` (None: no
        Range) with If-Range `if_range` (None: none)."""
        st = self.dl.stats()
        self.assertEqual(self.served(mid), {"requests": 1, "bytes": nbytes}, st)
        want = [] if range_start is None else [f"bytes={range_start}-"]
        self.assertEqual(st["ranges"], want, st)
        self.assertEqual(st["if_ranges"], [] if if_range is None else [if_range], st)
        self.assertEqual(st["statuses"], {"200" if range_start is None else "206": 1}, st)

    def test_fresh_install_is_served_its_size_once(self):
        self.assertInstalled(FRESH, f"{FRESH}.gguf", self.install(FRESH))
        self.assertServedOnce(FRESH, SIZE)

    def test_resume_costs_exactly_the_missing_bytes(self):
        kept = 1234567
        self.plant(RESUME, kept, self.meta(RESUME))
        self.assertInstalled(RESUME, f"{RESUME}.gguf", self.install(RESUME))
        self.assertServedOnce(RESUME, SIZE - kept, range_start=kept)

    def test_resume_with_the_servers_etag_sends_if_range(self):
        kept = 777777
        self.plant(RESUME_ETAG, kept, self.meta(RESUME_ETAG, validator=self.etag(RESUME_ETAG)))
        self.assertInstalled(RESUME_ETAG, f"{RESUME_ETAG}.gguf", self.install(RESUME_ETAG))
        self.assertServedOnce(RESUME_ETAG, SIZE - kept, range_start=kept,
                              if_range=self.etag(RESUME_ETAG))

    def test_stale_partials_are_thrown_away_and_served_whole_once(self):
        for mid, meta in ((OTHER_SUM, self.meta(OTHER_SUM, checksum="sha256:" + "0" * 64)),
                          (OTHER_URL, self.meta(OTHER_URL, url=self.dl.url(f"{FRESH}.gguf"))),
                          (NO_META, None)):
            with self.subTest(model=mid):
                self.dl.reset()
                self.plant(mid, SIZE // 2, meta)
                self.assertInstalled(mid, f"{mid}.gguf", self.install(mid))
                self.assertServedOnce(mid, SIZE)

    def test_kill9_then_restart_costs_exactly_the_missing_bytes(self):
        self.dl.control(throttle=1 * MiB)
        job_id = self.post_install(KILLED)["job_id"]
        wait_until(lambda: self.partial_size(KILLED) >= SIZE // 4, 10 * SLOW,
                   what="a quarter of the download")
        pid = self.stack.pid("installer")
        self.stack.sv("once", "installer")  # the supervisor leaves it down when it dies
        os.kill(pid, 9)
        wait_until(lambda: not alive(pid), 5, what="mg-installer to die")
        kept = self.partial_size(KILLED)
        self.assertGreater(kept, 0)
        self.assertLess(kept, SIZE)
        self.dl.control(throttle=0)
        time.sleep(0.5)  # the server's thread notices the closed connection
        self.dl.reset()
        self.stack.sv("up", "installer")  # a new daemon resumes the job
        self.stack.record_pids()
        self.assertInstalled(KILLED, f"{KILLED}.gguf", self.wait_job(job_id))
        self.assertServedOnce(KILLED, SIZE - kept, range_start=kept, if_range=self.etag(KILLED))


if __name__ == "__main__":
    mgtest.main()
