#!/usr/bin/env python3
"""test_jobs_history.py - GET /api/models/jobs?status=&limit=&offset= and the bounded job
history through the real stack: {"total","offset","limit","jobs"} newest first, the status
filter, paging, every malformed parameter answered 400 invalid_parameter naming it, at most
job_history finished jobs kept (older job files removed, GET of them 404), and a running job
listed with its current progress."""

import os

import mgtest
from mgtest import wait_until
from test_install import JOB_KEYS, SLOW, InstallCase, model

KEEP = 3
DONE = [f"it-hist-{i}" for i in range(5)]
BAD = "it-hist-bad"
SLOWM = "it-hist-slow"


def history_models(dl):
    out = []
    for mid in DONE + [SLOWM]:
        size, digest = dl.files[f"{mid}.gguf"]
        out.append(model(mid, dl.url(f"{mid}.gguf"), digest, size))
    size = dl.files[f"{DONE[0]}.gguf"][0]
    out.append(model(BAD, dl.url(f"{DONE[0]}.gguf"), "0" * 64, size))
    return out


class HistoryTest(InstallCase):
    @classmethod
    def setUpClass(cls):
        files = {f"{m}.gguf": 4096 + i for i, m in enumerate(DONE)}
        files[f"{SLOWM}.gguf"] = 2 * 1024 * 1024
        cls.start(history_models, files, server={"job_history": KEEP})
        # five installed, then one failed: six finished jobs, oldest first
        cls.ids = []
        for mid in DONE + [BAD]:
            r = cls.stack.post(f"/api/models/gallery/{mid}/install")
            job_id = r.json["job_id"]
            cls.ids.append(job_id)
            wait_until(lambda: cls.stack.get(f"/api/models/jobs/{job_id}").json["status"]
                       in ("installed", "failed"), 20 * SLOW, what=f"job of {mid}")

    def page(self, query=""):
        body = self.assertJsonAnswer(self.stack.get("/api/models/jobs" + query), 200)
        self.assertEqual(set(body), {"node", "total", "offset", "limit", "jobs"}, body)
        for j in body["jobs"]:
            self.assertLessEqual(JOB_KEYS, set(j), j)
        return body

    def test_history_is_bounded_newest_first(self):
        body = self.page()
        self.assertEqual((body["total"], body["offset"], body["limit"]), (KEEP, 0, 100), body)
        newest = list(reversed(self.ids))[:KEEP]
        self.assertEqual([j["job_id"] for j in body["jobs"]], newest)
        self.assertEqual(body["jobs"][0]["status"], "failed")
        self.assertEqual(body["jobs"][0]["error_code"], "checksum_mismatch")
        self.assertEqual([j["status"] for j in body["jobs"][1:]], ["installed"] * (KEEP - 1))
        files = sorted(n for n in os.listdir(self.stack.path("jobs")) if n.endswith(".json"))
        self.assertEqual(files, sorted(f"{i}.json" for i in newest), "pruned job files remain")
        for old in self.ids[:-KEEP]:
            self.assertError(self.stack.get(f"/api/models/jobs/{old}"), 404, "job_not_found",
                             "job_id")
        # the pruned jobs' models stay installed
        self.assertEqual(self.installed()[DONE[0]]["status"], "installed")

    def test_status_filter_and_paging(self):
        every = self.page()["jobs"]
        installed = [j for j in every if j["status"] == "installed"]
        body = self.page("?status=installed")
        self.assertEqual(body["total"], len(installed), body)
        self.assertEqual(body["jobs"], installed)
        body = self.page("?status=failed&limit=1")
        self.assertEqual((body["total"], len(body["jobs"])), (1, 1), body)
        self.assertEqual(body["jobs"][0]["job_id"], self.ids[-1])
        body = self.page("?limit=1&offset=1")
        self.assertEqual(body["total"], len(every))
        self.assertEqual(body["jobs"], every[1:2])
        body = self.page("?status=installed&offset=1&limit=1")
        self.assertEqual(body["jobs"], installed[1:2])
        body = self.page("?offset=50")
        self.assertEqual((body["total"], body["offset"], body["jobs"]), (len(every), 50, []))
        self.assertEqual(self.page("?status=queued")["total"], 0)
        self.assertEqual(self.page("?status=paused")["total"], 0)
        # empty status: no filter; unknown parameters ignored; the last repeated value wins
        self.assertEqual(self.page("?status=&foo=bar")["total"], len(every))
        self.assertEqual(self.page("?limit=5&limit=1")["limit"], 1)

    def test_malformed_parameters(self):
        cases = [("status=bogus", "status"), ("status=INSTALLED", "status"),
                 ("status=installed%00", "status"), ("limit=0", "limit"),
                 ("limit=1001", "limit"), ("limit=abc", "limit"), ("limit=", "limit"),
                 ("limit=1.5", "limit"), ("limit=-1", "limit"), ("limit", "limit"),
                 ("offset=-1", "offset"), ("offset=x", "offset"), ("offset=", "offset"),
                 ("offset=99999999999999999999", "offset")]
        for query, param in cases:
            with self.subTest(query=query):
                self.assertError(self.stack.get(f"/api/models/jobs?{query}"), 400,
                                 "invalid_parameter", param)
        self.assertError(self.stack.get("/api/models/jobs?limit=%zz"), 400, "invalid_parameter",
                         "limit")
        # the last value of a repeated parameter counts, also for a bad first one
        self.assertEqual(self.page("?limit=abc&limit=2")["limit"], 2)
        self.assertError(self.stack.get("/api/models/jobs?limit=2&limit=abc"), 400,
                         "invalid_parameter", "limit")
        self.assertEqual(self.page("?x%zz=1")["limit"], 100, "an undecodable unknown key")

    def test_running_job_listed_with_current_progress(self):
        self.dl.control(throttle=256 * 1024)
        job_id = self.post_install(SLOWM)["job_id"]
        wait_until(lambda: self.partial_size(SLOWM) >= 300 * 1024, 10 * SLOW,
                   what="the download under way")
        first = self.page("?status=downloading")
        self.assertEqual([j["job_id"] for j in first["jobs"]], [job_id], first)
        wait_until(lambda: self.page("?status=downloading")["jobs"][0]["downloaded"]
                   > first["jobs"][0]["downloaded"], 5 * SLOW, what="progress in the list")
        listed = self.page("?limit=1")["jobs"][0]
        self.assertEqual(listed["job_id"], job_id, "the newest job comes first")
        self.assertGreater(listed["downloaded"], 0, listed)
        self.dl.control(throttle=0)
        self.assertEqual(self.wait_job(job_id)["status"], "installed")
        body = self.page()
        self.assertEqual(body["total"], KEEP)
        self.assertEqual(body["jobs"][0]["job_id"], job_id)


if __name__ == "__main__":
    mgtest.main()
