#!/usr/bin/env python3
"""test_boundaries.py - the boundary tables of tests/data/cases/ through the real stack:
every search parameter just inside and just outside its bounds (search.jsonl, on the gallery
search_gallery.json), the job list's status, limit and offset (jobs_params.jsonl), model and
job ids on every route that takes one (ids.jsonl: a malformed id is 400 naming the parameter,
a well-formed unknown one 404 naming it, and nothing is done), each rule of the gallery schema
(model_valid.jsonl: exactly the valid models are served, each invalid one reported with its
reason in the status document), the Authorization header around api_token (tokens.jsonl: one
character short, one more, another case, other schemes), and the request limits (a query
string of 8192 bytes and 8193, a body of 64 KiB and one byte more).

Every error is checked for its status, code and parameter. The unit test test_cases.c runs the
same tables against the C functions."""

import os
import urllib.parse

import mgtest
from mgtest import DATA, Stack, StackTestCase, load_cases


def at(case, table):
    return f"{table}:{case['line']}" + (f" ({case['note']})" if "note" in case else "")


class SearchBoundaries(StackTestCase):
    """Search, the job list, ids and request limits on one stack (search_gallery.json)."""

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(gallery=os.path.join(DATA, "cases", "search_gallery.json"))

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def test_search_table(self):
        cases = load_cases("search.jsonl")
        self.assertGreater(len(cases), 60)
        for c in cases:
            with self.subTest(case=at(c, "search.jsonl"), qs=c["qs"][:80]):
                r = self.stack.search(raw=c["qs"])
                status = c.get("status", 200)
                if status != 200:
                    self.assertError(r, status, c.get("code", "invalid_parameter"),
                                     c.get("parameter"))
                    continue
                body = self.assertJsonAnswer(r, 200)
                self.assertEqual([m["id"] for m in body["models"]], c["ids"], body)
                for key in ("total", "limit", "offset"):
                    if key in c:
                        self.assertEqual(body[key], c[key], key)

    def test_jobs_table(self):
        cases = load_cases("jobs_params.jsonl")
        for c in cases:
            with self.subTest(case=at(c, "jobs_params.jsonl"), qs=c["qs"]):
                r = self.stack.get("/api/models/jobs" + ("?" + c["qs"] if c["qs"] else ""))
                status = c.get("status", 200)
                if status != 200:
                    self.assertError(r, status, c.get("code", "invalid_parameter"),
                                     c.get("parameter"))
                    continue
                body = self.assertJsonAnswer(r, 200)
                self.assertEqual(body["total"], 0, body)
                self.assertEqual(body["jobs"], [], body)
                self.assertEqual(body["limit"], c.get("limit", 100), body)
                self.assertEqual(body["offset"], c.get("offset", 0), body)

    def id_path(self, raw):
        return urllib.parse.quote(raw, safe="")

    def test_id_table(self):
        for c in load_cases("ids.jsonl"):
            if c.get("http") is False:
                continue
            seg = self.id_path(c["id"])
            nul = "\0" in c["id"]
            if c["kind"] == "model":
                requests = [("POST", f"/api/models/gallery/{seg}/install", "model_not_found"),
                            ("DELETE", f"/api/models/{seg}", "not_found")]
                bad, param, rule = "invalid_model_id", "id", "1 to 128 characters"
            else:
                requests = [("GET", f"/api/models/jobs/{seg}", "job_not_found"),
                            ("DELETE", f"/api/models/jobs/{seg}", "job_not_found")]
                bad, param, rule = "invalid_job_id", "job_id", "16 lower-case hex"
            for method, path, unknown in requests:
                with self.subTest(case=at(c, "ids.jsonl"), method=method, path=path[:80]):
                    r = self.stack.request(method, path)
                    if nul:  # nginx refuses a NUL in the path before mg-fcgi sees it
                        self.assertError(r, 400, "bad_request", None)
                    elif c["valid"]:
                        self.assertError(r, 404, unknown, param)
                    else:
                        self.assertError(r, 400, bad, param, rule)
        self.assertNothingDone()

    def assertNothingDone(self):
        jobs = self.stack.path("jobs")
        made = [n for n in os.listdir(jobs) if n.endswith(".json")] if os.path.isdir(jobs) else []
        self.assertEqual(made, [], "a request with a bad or unknown id made a job")
        self.assertFalse(os.path.exists(self.stack.path("config", "models.json")) and
                         self.stack.read_json("config/models.json")["models"])

    def test_query_string_length(self):
        ok = self.stack.search(raw="x=" + "a" * 8190)
        body = self.assertJsonAnswer(ok, 200)
        self.assertEqual(body["total"], 5, "8192 bytes: an unknown parameter, ignored")
        self.assertError(self.stack.search(raw="x=" + "a" * 8191), 414, "uri_too_long", None)
        self.assertError(self.stack.get("/api/models/jobs?x=" + "a" * 8191), 414,
                         "uri_too_long", None)

    def test_body_size(self):
        path = "/api/models/gallery/not-here/install"
        self.assertError(self.stack.post(path, body=b"x" * 65536), 404, "model_not_found", "id")
        self.assertError(self.stack.post(path, body=b"x" * 65537), 413, "payload_too_large",
                         None)
        self.assertNothingDone()


class TokenBoundaries(StackTestCase):
    """tokens.jsonl on a stack with api_token set."""

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(gallery=os.path.join(DATA, "cases", "search_gallery.json"),
                          server={"api_token": "s3cret-token"})

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def test_token_table(self):
        for c in load_cases("tokens.jsonl"):
            headers = {} if c["auth"] is None else {"Authorization": c["auth"]}
            for method, path, code in (("POST", "/api/models/gallery/not-here/install",
                                        "model_not_found"),
                                       ("DELETE", "/api/models/not-here", "not_found")):
                with self.subTest(case=at(c, "tokens.jsonl"), method=method):
                    r = self.stack.request(method, path, headers=headers)
                    if c["ok"]:
                        self.assertError(r, 404, code, "id")
                    else:
                        self.assertError(r, 401, "unauthorized", None)
                        self.assertEqual(r.header("www-authenticate", "")[:6], "Bearer", r.headers)
        # reads need no token
        self.assertJsonAnswer(self.stack.get("/api/models/jobs"), 200)


class GalleryRules(StackTestCase):
    """model_valid.jsonl as one gallery: the valid models are served, the others reported."""

    @classmethod
    def setUpClass(cls):
        cls.cases = load_cases("model_valid.jsonl")
        base = cls.cases[0]["base"]
        cls.models, cls.valid = [], []
        for c in cls.cases[1:]:
            m = dict(base, recommendedHardware=dict(base["recommendedHardware"]),
                     id=f"case-{c['line']}")
            for key, value in c.get("set", {}).items():
                outer, _, inner = key.partition(".")
                if inner:
                    m[outer][inner] = value
                else:
                    m[key] = value
            for key in c.get("unset", []):
                m.pop(key, None)
            cls.models.append((c, m))
            if c["valid"]:
                cls.valid.append(m["id"])
        gallery = {"version": 1, "generatedAt": "2026-01-01T00:00:00Z",
                   "models": [m for _, m in cls.models]}
        cls.stack = Stack(gallery=gallery)

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def test_exactly_the_valid_models_are_served(self):
        self.assertGreater(len(self.valid), 20)
        body = self.assertJsonAnswer(self.stack.gallery(), 200)
        self.assertEqual([m["id"] for m in body["models"]], self.valid)
        r = self.stack.search({"limit": 1000, "sort": "name"})
        self.assertEqual(sorted(m["id"] for m in r.json["models"]), sorted(self.valid))

    def test_each_invalid_model_is_reported_with_its_reason(self):
        st = self.assertJsonAnswer(self.stack.get("/api/models/gallery/status"), 200)
        invalid = {e["index"]: e for e in st["sources"][0]["invalid"]}
        for index, (c, m) in enumerate(self.models):
            with self.subTest(case=at(c, "model_valid.jsonl")):
                if c["valid"]:
                    self.assertNotIn(index, invalid)
                    continue
                self.assertIn(index, invalid, f"model {index} ({m.get('id')!r}) not reported")
                self.assertIn(c["reason"], invalid[index]["reason"])
        self.assertEqual(len(invalid), len(self.models) - len(self.valid))


if __name__ == "__main__":
    mgtest.main()
