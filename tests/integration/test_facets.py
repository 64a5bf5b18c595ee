#!/usr/bin/env python3
"""test_facets.py - GET /api/models/gallery/facets and the `family` field against the real
stack: facets computed by a reference written here (each facet counted over the models that
match every filter except its own, values lower-cased, by count then value, facet_limit),
their `total` equal to the search's for the same filters, the fit facet on a machine of 8 GB
of RAM and 2 GB of VRAM (server.json), malformed values 400 naming the parameter, and
`family` validated, filtered on (exact, case-insensitive) and counted."""

import copy
import itertools
import random

import mgtest
from mgtest import SharedStackTestCase, StackTestCase, Stack, load_fixture
from test_search import MODELS, ref_fit, ref_search

# the machine the stack is told it runs on (server.json), so that every fit class occurs
MACHINE = {"ram_gb": 8, "vram_gb": 2}
FACETS = [("category", "categories"), ("language", "languages"), ("tag", "tags"),
          ("quantization", "quantization"), ("license", "license"), ("family", "family")]


def ref_facets(params, limit=50, models=None, machine=None):
    """What the contract says .../facets answers for `params` on `machine` (its
    GET /api/models/system answer)."""
    models = models or MODELS
    total = ref_search(dict(params, limit=1000, offset=0))["total"]
    out = {}
    for name, field in FACETS:
        others = {k: v for k, v in params.items() if k != name}
        ids = ref_search(dict(others, limit=1000, offset=0))["ids"]
        counts = {}
        for i in ids:
            v = models[i].get(field)
            values = v if isinstance(v, list) else [v]
            for x in {x.lower() for x in values if isinstance(x, str) and x}:
                counts[x] = counts.get(x, 0) + 1
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].encode()))
        out[name] = [{"value": k, "count": c} for k, c in ranked[:limit]]
    counts = {}
    for i in ref_search(dict(params, limit=1000, offset=0))["ids"]:
        fit = ref_fit(models[i], machine["ram_bytes"], machine["vram_bytes"])[0]
        counts[fit] = counts.get(fit, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].encode()))
    out["fit"] = [{"value": k, "count": c} for k, c in ranked[:limit]]
    return {"total": total, "facets": out}


class FacetsTest(SharedStackTestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(gallery="gallery_it.json", server={"machine": MACHINE})

    def facets(self, params=None, raw=None):
        q = raw if raw is not None else mgtest.qs(params or {})
        return self.stack.get("/api/models/gallery/facets" + (f"?{q}" if q else ""))

    def check(self, params, limit=50):
        p = dict(params)
        if limit != 50:
            p["facet_limit"] = limit
        body = self.assertJsonAnswer(self.facets(p), 200)
        machine = self.assertJsonAnswer(self.stack.get("/api/models/system"), 200)
        self.assertEqual(body, ref_facets(params, limit, machine=machine), f"facets {p}")
        search = self.assertJsonAnswer(self.stack.search(dict(params, limit=1)), 200)
        self.assertEqual(body["total"], search["total"], f"facets and search totals for {params}")
        return body

    def test_no_filter(self):
        body = self.check({})
        self.assertEqual(body["total"], 15)
        self.assertEqual(list(body["facets"]),
                         ["category", "language", "tag", "quantization", "license", "family", "fit"])
        self.assertEqual(body["facets"]["category"][:2], [{"value": "chat", "count": 10},
                                                         {"value": "code", "count": 2}])
        self.assertEqual(sum(v["count"] for v in body["facets"]["fit"]), 15, body["facets"]["fit"])
        self.assertEqual(body["facets"]["fit"], [{"value": "full_gpu", "count": 7},
                                                 {"value": "partial_gpu", "count": 5},
                                                 {"value": "too_large", "count": 3}])

    def test_own_filter_is_left_out(self):
        body = self.check({"category": "code"})
        self.assertEqual(body["total"], 2)
        # the category facet still counts every category (its own filter left out) ...
        self.assertEqual(body["facets"]["category"], self.check({})["facets"]["category"])
        # ... the others only the two code models
        self.assertEqual(sum(v["count"] for v in body["facets"]["license"]), 2)

    def test_filters_combined(self):
        for params in ({"language": "de", "min_rating": 4}, {"query": "instruct", "tag": "gguf"},
                       {"query": "7b", "max_ram_gb": 16, "sort": "name"},
                       {"category": "chat", "language": "en", "license": "apache-2.0"},
                       {"query": "nothing-matches-this"}, {"category": "no-such-category"},
                       {"quantization": "Q4_K_M", "min_size_gb": 1, "max_size_gb": 8}):
            self.check(params)

    def test_random_combinations_agree_with_reference(self):
        rng = random.Random(7)
        values = {
            "query": ["qwen", "instruct", "7b", "a", "chat coder", "x", "-", "2.5"],
            "category": ["chat", "code", "embedding", "nope"],
            "language": ["en", "de", "zh", "fr"],
            "tag": ["gguf", "coder", "rag", "instruct"],
            "quantization": ["q4_k_m", "Q8_0", "f16"],
            "license": ["apache-2.0", "mit", "llama3.1"],
            "min_rating": ["3", "4.2"], "max_ram_gb": ["4", "16"],
        }
        for _ in range(40):
            params = {k: rng.choice(v) for k, v in values.items() if rng.random() < 0.3}
            self.check(params, rng.choice([1, 3, 50]))

    def test_facet_limit(self):
        body = self.check({}, limit=1)
        for name, _ in FACETS:
            self.assertLessEqual(len(body["facets"][name]), 1)
        self.check({}, limit=1000)
        for bad in ("0", "1001", "x", "", "1.5", "-1", "%00"):
            self.assertError(self.facets(raw=f"facet_limit={bad}"), 400, "invalid_parameter",
                             "facet_limit")

    def test_search_parameters_checked(self):
        self.assertError(self.facets(raw="min_rating=abc"), 400, "invalid_parameter", "min_rating")
        self.assertError(self.facets(raw="min_size_gb=5&max_size_gb=1"), 400,
                         "invalid_parameter", "min_size_gb")

    def test_methods(self):
        r = self.stack.post("/api/models/gallery/facets")
        self.assertError(r, 405, "method_not_allowed", None, "allowed: GET, HEAD")
        self.assertIn("GET", r.header("allow", ""))


class FamilyTest(StackTestCase):
    @classmethod
    def setUpClass(cls):
        g = load_fixture("gallery_it.json")
        families = {"qwen2.5-coder-7b-instruct": "Qwen2.5", "qwen2.5-0.5b-instruct": "qwen2.5",
                    "llama-3.2-1b-instruct": "Llama-3", "llama-3.1-8b-instruct": "llama-3",
                    "gemma-2-27b-it": "gemma"}
        for m in g["models"]:
            if isinstance(m, dict) and m.get("id") in families:
                m["family"] = families[m["id"]]
        # a family that is not a string makes its model invalid
        bad = copy.deepcopy(next(m for m in g["models"] if isinstance(m, dict)
                                 and m.get("id") == "starcoder2-3b"))
        bad["id"], bad["family"] = "bad-family", 7
        g["models"].append(bad)
        cls.gallery = g
        cls.stack = Stack(gallery=g)

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def test_family_filter_exact_case_insensitive(self):
        ids = lambda p: [m["id"] for m in self.assertJsonAnswer(self.stack.search(p), 200)["models"]]
        self.assertEqual(sorted(ids({"family": "QWEN2.5"})),
                         ["qwen2.5-0.5b-instruct", "qwen2.5-coder-7b-instruct"])
        self.assertEqual(sorted(ids({"family": "llama-3", "sort": "name"})),
                         ["llama-3.1-8b-instruct", "llama-3.2-1b-instruct"])
        self.assertEqual(ids({"family": "qwen"}), [])            # exact, not substring
        self.assertEqual(len(ids({"family": ""})), 15)           # empty: ignored
        # models carry it as in the gallery
        body = self.assertJsonAnswer(self.stack.search({"family": "gemma"}), 200)
        self.assertEqual(body["models"][0]["family"], "gemma")

    def test_family_not_a_string_is_invalid(self):
        body = self.assertJsonAnswer(self.stack.gallery(), 200)
        self.assertNotIn("bad-family", [m["id"] for m in body["models"]])
        self.assertIn("family must be a string", self.stack.logs())

    def test_family_facet(self):
        body = self.assertJsonAnswer(self.stack.get("/api/models/gallery/facets"), 200)
        self.assertEqual(body["facets"]["family"], [{"value": "llama-3", "count": 2},
                                                    {"value": "qwen2.5", "count": 2},
                                                    {"value": "gemma", "count": 1}])
        body = self.assertJsonAnswer(
            self.stack.get("/api/models/gallery/facets?family=qwen2.5&language=zh"), 200)
        self.assertEqual(body["total"], 2)
        self.assertEqual(body["facets"]["family"], [{"value": "qwen2.5", "count": 2}])


if __name__ == "__main__":
    mgtest.main()
