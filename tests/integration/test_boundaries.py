#!/usr/bin/env python3
"""test_boundaries.py - the boundary tables of tests/data/cases/ through the real stack:
- every search parameter just inside and just outside its bounds (search.jsonl, on the
  gallery search_gallery.json), the facets and facet_limit (facets.jsonl);
- the job list's status, limit and offset (jobs_params.jsonl);
- model and job ids on every route that takes one (ids.jsonl: install, delete, update,
  verify, preflight; job read, cancel, pause, resume: a malformed id is 400 naming the
  parameter, a well-formed unknown one 404 naming it, and nothing is done);
- each rule of the gallery schema (model_valid.jsonl: exactly the valid models are served,
  each invalid one reported with its reason in the status document);
- the Authorization header around api_token (tokens.jsonl), the Host names answered
  (hosts.jsonl), the browser origins allowed to change things (origins.jsonl) and the node a
  call is pinned to (nodes.jsonl);
- the request limits (a query string of 8192 bytes and 8193, a body of 64 KiB and one byte
  more) and the free-disk check of an install (the model's size plus 256 MiB, minus a
  partial already on disk: 128 MiB either side of it) and of a preflight (its disk_ok
  from its own needs_bytes and free_bytes, around the margin).

Every error is checked for its status, code and parameter. The unit test test_cases.c runs
the same tables against the C functions."""

import os
import urllib.parse

import mgtest
from mgtest import DATA, Stack, StackTestCase, load_cases, wait_until

MiB = 1 << 20


def at(case, table):
    return f"{table}:{case['line']}" + (f" ({case['note']})" if "note" in case else "")


class SearchBoundaries(StackTestCase):
    """Search, the job list, ids and request limits on one stack (search_gallery.json)."""

    @classmethod
    def setUpClass(cls):
        # the machine of search.jsonl's fit rows and facets.jsonl's fit facet
        cls.stack = Stack(gallery=os.path.join(DATA, "cases", "search_gallery.json"),
                          server={"machine": {"ram_gb": 4, "vram_gb": 4}})

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

    def test_facets_table(self):
        for c in load_cases("facets.jsonl"):
            with self.subTest(case=at(c, "facets.jsonl"), qs=c["qs"]):
                query = "?" + c["qs"] if c["qs"] else ""
                r = self.stack.get("/api/models/gallery/facets" + query)
                if "status" in c:
                    self.assertError(r, c["status"], "invalid_parameter", c["parameter"])
                else:
                    self.assertEqual(self.assertJsonAnswer(r, 200), c["answer"])

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
                            ("DELETE", f"/api/models/{seg}", "not_found"),
                            ("POST", f"/api/models/{seg}/update", "not_installed"),
                            ("POST", f"/api/models/{seg}/verify", "not_installed"),
                            ("GET", f"/api/models/gallery/{seg}/preflight", "model_not_found")]
                bad, param, rule = "invalid_model_id", "id", "1 to 128 characters"
            else:
                requests = [("GET", f"/api/models/jobs/{seg}", "job_not_found"),
                            ("DELETE", f"/api/models/jobs/{seg}", "job_not_found"),
                            ("POST", f"/api/models/jobs/{seg}/pause", "job_not_found"),
                            ("POST", f"/api/models/jobs/{seg}/resume", "job_not_found")]
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
        self.assertEqual(body["total"], 7, "8192 bytes: an unknown parameter, ignored")
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


def with_port(text, port):
    return text.replace("{port+1}", str(port + 1)).replace("{port}", str(port))


class AccessBoundaries(StackTestCase):
    """hosts.jsonl, origins.jsonl and nodes.jsonl on a stack with server_names,
    allowed_origins and node_name."""

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(gallery=os.path.join(DATA, "cases", "search_gallery.json"),
                          server={"server_names": ["models.lan", "box.lan:9999"],
                                  "allowed_origins": ["https://dash.example:8443"],
                                  "node_name": "node-a"})

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def test_host_table(self):
        for c in load_cases("hosts.jsonl"):
            host = with_port(c["host"], self.stack.port)
            with self.subTest(case=at(c, "hosts.jsonl"), host=host):
                r = self.stack.get("/api/models/health", headers={"Host": host})
                if c["ok"]:
                    self.assertEqual(self.assertJsonAnswer(r, 200)["status"], "ok")
                else:
                    self.assertError(r, 421, "misdirected_request", None)

    def test_node_table(self):
        for c in load_cases("nodes.jsonl"):
            headers = {} if c["node"] is None else {"X-MG-Node": c["node"]}
            with self.subTest(case=at(c, "nodes.jsonl"), headers=headers):
                health = self.stack.get("/api/models/health", headers=headers)
                delete = self.stack.delete("/api/models/not-here", headers=headers)
                if c["ok"]:
                    self.assertEqual(self.assertJsonAnswer(health, 200)["status"], "ok")
                    self.assertError(delete, 404, "not_found", "id")
                else:
                    self.assertError(health, 421, "wrong_node", None, "node-a")
                    self.assertError(delete, 421, "wrong_node", None, "node-a")

    def test_origin_table(self):
        for c in load_cases("origins.jsonl"):
            headers = {}
            if c["origin"] is not None:
                headers["Origin"] = with_port(c["origin"], self.stack.port)
            if "site" in c:
                headers["Sec-Fetch-Site"] = c["site"]
            with self.subTest(case=at(c, "origins.jsonl"), headers=headers):
                r = self.stack.post("/api/models/gallery/not-here/install", headers=headers)
                if c["ok"]:
                    self.assertError(r, 404, "model_not_found", "id")
                else:
                    self.assertError(r, 403, "forbidden_origin", None)


class DiskMargin(StackTestCase):
    """POST install against the free space of the data root's file system (statvfs): a model
    that needs (with the 256 MiB margin) 128 MiB more than is free gets 507; 128 MiB less,
    202; a partial download on disk counts as already there. The gallery is rewritten with
    sizes taken from the free space just before each request; a case whose answer differs
    while the free space moved by more than 64 MiB meanwhile (other work on the machine) is
    tried again."""

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(gallery=cls.gallery(1))

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    @staticmethod
    def gallery(size):
        return {"version": 1, "generatedAt": "2026-01-01T00:00:00Z", "models": [
            {"id": "disk", "name": "Disk", "checksum": "sha256:" + "0" * 64,
             "downloadUrl": "https://127.0.0.1:9/disk.gguf", "sizeGb": 1, "sizeBytes": size}]}

    def free(self):
        st = os.statvfs(self.stack.path("models"))
        return st.f_bavail * st.f_frsize

    def post_sized(self, offset):
        """POSTs an install of "disk" sized free space + `offset`. (answer, free space moved)"""
        before = self.free()
        size = before + offset
        self.stack.write_gallery(self.gallery(size))
        wait_until(lambda: self.stack.search({"query": "disk"}).json["models"][0]["sizeBytes"]
                   == size, 5, what="the gallery with the new size")
        r = self.stack.post("/api/models/gallery/disk/install")
        return r, abs(self.free() - before) > 64 * MiB

    def expect(self, offset, status):
        for attempt in range(3):
            r, moved = self.post_sized(offset)
            if r.status == status or not moved:
                break
        if status == 507:
            self.assertError(r, 507, "insufficient_storage", None, "not enough free disk")
            return
        job = self.assertJsonAnswer(r, 202)
        self.stack.delete(f"/api/models/jobs/{job['job_id']}")
        wait_until(lambda: self.stack.get(f"/api/models/jobs/{job['job_id']}").json["status"]
                   == "cancelled", 10, what="the job cancelled")

    def test_margin_is_256_mib(self):
        for name in ("disk.gguf.part", "disk.gguf.part.meta"):
            if os.path.exists(self.stack.path("models", ".partial", name)):
                os.unlink(self.stack.path("models", ".partial", name))
        self.expect(-256 * MiB + 128 * MiB, 507)
        self.expect(-256 * MiB - 128 * MiB, 202)

    def test_preflight_disk(self):
        # the preflight tells from its own numbers: needs_bytes (the size and the 256 MiB
        # margin) against free_bytes, whichever way the free space moves meanwhile
        for offset in (-384, -288, -257, -255, -224, -128):
            with self.subTest(offset_mib=offset):
                size = self.free() + offset * MiB
                self.stack.write_gallery(self.gallery(size))
                wait_until(lambda: self.stack.search({"query": "disk"}).json["models"][0]
                           ["sizeBytes"] == size, 5, what="the gallery with the new size")
                body = self.assertJsonAnswer(self.stack.get("/api/models/gallery/disk/preflight"),
                                             200)
                self.assertEqual(body["needs_bytes"], size + 256 * MiB, body)
                self.assertLess(abs(body["free_bytes"] - self.free()), 64 * MiB, body)
                self.assertEqual(body["disk_ok"], body["free_bytes"] >= body["needs_bytes"], body)
                codes = [x["code"] for x in body["reasons"]]
                self.assertEqual("insufficient_storage" in codes, not body["disk_ok"], body)
                if not body["disk_ok"]:
                    self.assertFalse(body["ok"], body)

    def test_a_partial_counts_as_downloaded(self):
        part = self.stack.path("models", ".partial", "disk.gguf.part")
        with open(part, "wb") as f:  # sparse: 256 MiB long, no space taken
            f.truncate(256 * MiB)
        owner = os.stat(self.stack.path("models", ".partial"))
        os.chown(part, owner.st_uid, owner.st_gid)
        self.expect(-128 * MiB, 202)


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
