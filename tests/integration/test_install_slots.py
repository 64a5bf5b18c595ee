#!/usr/bin/env python3
"""test_install_slots.py - the installer runs at most max_parallel_downloads jobs at once,
oldest first, through the real stack: with the default of 2 and four installs posted in a
row, the first two download while the others wait queued; when the first (small) one ends,
the third starts and the fourth still waits; the download server never sees more than two
file bodies in flight, and every model ends installed, each served once. Helpers:
test_install.py."""

import mgtest
from mgtest import wait_until
from test_install import SLOW, InstallCase, MiB, model

SMALL, BIG1, BIG2, BIG3 = "sl-small", "sl-big-1", "sl-big-2", "sl-big-3"
ORDER = (SMALL, BIG1, BIG2, BIG3)


def slot_models(dl):
    return [model(m, dl.url(f"{m}.gguf"), dl.files[f"{m}.gguf"][1], dl.files[f"{m}.gguf"][0])
            for m in ORDER]


class SlotsTest(InstallCase):
    @classmethod
    def setUpClass(cls):
        files = {f"{SMALL}.gguf": 128 * 1024}
        files.update({f"{m}.gguf": 3 * MiB for m in (BIG1, BIG2, BIG3)})
        cls.start(slot_models, files)  # max_parallel_downloads: the default, 2

    def statuses(self, jobs):
        return {m: self.job(j)["status"] for m, j in jobs.items()}

    def test_two_at_a_time_oldest_first(self):
        self.dl.control(throttle=1 * MiB)  # a big one takes about 3 s
        jobs = {}
        for m in ORDER:
            jobs[m] = self.post_install(m)["job_id"]
        self.wait_job(jobs[SMALL])
        # the small one ended: the oldest waiting job (BIG2) took its slot, BIG3 waits
        st = wait_until(lambda: (s := self.statuses(jobs))[BIG2] == "downloading" and s,
                        5 * SLOW, what=f"{BIG2} downloading")
        self.assertEqual(st[BIG1], "downloading", st)
        self.assertEqual(st[BIG3], "queued", st)
        self.assertEqual(self.dl.path_stats(f"{BIG3}.gguf")["requests"], 0)
        for m in ORDER:
            self.assertInstalled(m, f"{m}.gguf", self.wait_job(jobs[m], timeout=60))
        stats = self.dl.stats()
        self.assertEqual(stats["max_inflight"], 2, stats)
        for m in ORDER:
            self.assertEqual(self.dl.path_stats(f"{m}.gguf"),
                             {"requests": 1, "bytes": self.dl.files[f"{m}.gguf"][0]})


if __name__ == "__main__":
    mgtest.main()
