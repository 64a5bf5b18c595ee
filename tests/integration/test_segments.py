#!/usr/bin/env python3
"""test_segments.py - parallel segments through the real stack and a real download server
(dlserver.py, throttled per response, so that ranges in parallel are faster than one):

- a file over segment_min_bytes is fetched in download_segments ranged requests at once
  (the server sees them in flight together), chunk by chunk in file order, installed with
  the right SHA-256; the job's progress counts the bytes of every segment;
- kill -9 of the daemon mid-way: the new daemon resumes every unfinished chunk where it
  stood (ranges that start inside chunks) and the file ends installed, without fetching
  much more than the file;
- ranges past some offset bring other bytes (same ETag): the checksum fails, nothing is
  installed and no partial stays;
- a file under segment_min_bytes is one plain stream (no Range)."""

import json
import os
import re

import mgtest
from mgtest import alive, wait_until
from test_install import SLOW, InstallCase, MiB, model

BIG = "seg-big"
CRASH = "seg-crash"
BAD = "seg-bad"
SMALL = "seg-small"
SEGMENTS = 4
CHUNK = MiB  # 8 MiB / (4 slots * 4) is under the 1 MiB floor
FILES = {f"{BIG}.gguf": 8 * MiB + 999, f"{CRASH}.gguf": 12 * MiB + 5,
         f"{BAD}.gguf": 6 * MiB, f"{SMALL}.gguf": 512 * 1024}


def models(dl):
    out = []
    for name, (size, digest) in dl.files.items():
        mid = name[:-len(".gguf")]
        out.append(model(mid, dl.url(name), digest, size, sizeBytes=size))
    return out


class SegmentsTest(InstallCase):
    @classmethod
    def setUpClass(cls):
        cls.start(models, FILES, server={"download_segments": SEGMENTS,
                                         "segment_min_bytes": 2 * MiB})

    def range_list(self):
        out = []
        for r in self.dl.stats()["ranges"]:
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", r)
            self.assertIsNotNone(m, r)
            out.append((int(m.group(1)), int(m.group(2)) if m.group(2) else None))
        return out

    def test_parallel_ranges_install(self):
        size = FILES[f"{BIG}.gguf"]
        self.dl.control(throttle=1 * MiB)  # per response: 4 at once are 4x faster
        job_id = self.post_install(BIG)["job_id"]
        seen = []

        def progress():
            j = self.job(job_id)
            seen.append(j["downloaded"])
            return j if j["status"] in ("installed", "failed") else None
        job = wait_until(progress, 30 * SLOW, 0.1, "the segmented install")
        self.assertInstalled(BIG, f"{BIG}.gguf", job)
        self.assertEqual(seen, sorted(seen), "progress never goes back")
        st = self.dl.stats()
        self.assertGreaterEqual(st["max_inflight"], SEGMENTS, st)  # (+ the dropped probe)
        ranges = self.range_list()
        self.assertEqual(ranges[0], (0, None), "the first request asks for bytes=0-")
        chunks = sorted(ranges[1:])
        want = [(a, min(a + CHUNK, size) - 1) for a in range(0, size, CHUNK)]
        self.assertEqual(chunks, want, "every chunk once, ranges a-b")
        served = self.dl.path_stats(f"{BIG}.gguf")["bytes"]
        self.assertLess(served, size + 2 * MiB, "the first answer is dropped early")

    def meta_parts(self, mid):
        """The chunks in flight the partial's meta records: [[start, end, pos], ...]."""
        path = self.stack.path("models", ".partial", f"{mid}.gguf.part.meta")
        try:
            with open(path) as f:
                return json.load(f).get("segments", {}).get("parts", [])
        except (OSError, ValueError):
            return []

    def test_kill9_resumes_every_segment(self):
        size = FILES[f"{CRASH}.gguf"]
        self.dl.control(throttle=512 * 1024)  # 2 MiB/s with 4 slots: about 6 s
        job_id = self.post_install(CRASH)["job_id"]
        # kill when the meta has at least two chunks part-way through
        wait_until(lambda: sum(1 for s, e, p in self.meta_parts(CRASH) if s < p < e) >= 2,
                   20 * SLOW, 0.05, what="two chunks part-way in the meta")
        pid = self.stack.pid("installer")
        os.kill(pid, 9)
        wait_until(lambda: not alive(pid), 5, 0.01, what="mg-installer to die")
        parts = self.meta_parts(CRASH)  # what the next daemon finds (it starts later)
        before = len(self.dl.stats()["ranges"])
        job = self.wait_job(job_id, timeout=40)
        self.stack.record_pids()
        self.assertInstalled(CRASH, f"{CRASH}.gguf", job)
        after = self.range_list()[before:]
        self.assertNotIn((0, None), after, "no new probe: the meta's chunks are resumed")
        # every chunk in flight is asked for again from inside it, up to its end (where the
        # meta says, give or take the second between its saves)
        resumed = []
        for start, end, pos in parts:
            q = [a for a, b in after if b == end - 1 and start <= a < end]
            self.assertEqual(len(q), 1, f"chunk {start}-{end} (at {pos}) resumed once: {after}")
            resumed.append(q[0] - start)
        self.assertGreaterEqual(sum(1 for r in resumed if r > 0), 2,
                                f"chunks resumed part-way: {parts} {after}")
        served = self.dl.path_stats(f"{CRASH}.gguf")["bytes"]
        self.assertLess(served, size + 4 * MiB, f"bytes served {served} for {size}")

    def test_other_bytes_in_a_segment_fail_the_checksum(self):
        self.dl.control(corrupt_from=4 * MiB + 17, throttle=4 * MiB)
        job = self.wait_job(self.post_install(BAD)["job_id"])
        self.assertEqual(job["status"], "failed", job)
        self.assertEqual(job["error_code"], "checksum_mismatch", job)
        self.assertEqual(job["diagnosis"], "corrupt_download", job)
        self.assertNothingLeft(BAD)
        self.assertGreater(len(self.range_list()), 2, "it was a segmented download")

    def test_small_file_is_one_stream(self):
        self.assertInstalled(SMALL, f"{SMALL}.gguf", self.install(SMALL))
        self.assertEqual(self.dl.stats()["ranges"], [])


if __name__ == "__main__":
    mgtest.main()
