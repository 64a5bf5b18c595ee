#!/usr/bin/env python3
"""test_search.py - GET /api/models/gallery/search against the real stack, by content.

The fixture tests/data/gallery_it.json holds 15 valid models (and invalid ones that must never
show). Every parameter is checked alone with a hand-written expected answer, then combined,
and many combinations are compared with a reference implementation of the contract written
here (ref_search). Every malformed value must be 400 invalid_parameter naming the parameter.
"""

import datetime
import itertools
import math
import random

import mgtest
from mgtest import SharedStackTestCase, load_fixture, qs

FIXTURE = load_fixture("gallery_it.json")
VALID = [m["id"] for m in FIXTURE["models"] if isinstance(m, dict)]
VALID = [
    "qwen2.5-coder-7b-instruct", "qwen2.5-0.5b-instruct", "gemma-2-27b-it",
    "llama-3.2-1b-instruct", "llama-3.1-8b-instruct", "mistral-7b-instruct-v0.2",
    "nomic-embed-text-v1.5", "whisper-base.en", "phi-3.5-mini-instruct",
    "deepseek-r1-distill-qwen-1.5b", "tinyllama-1.1b-chat", "starcoder2-3b", "minimal-model",
    "gemma-3-1b-it", "mixtral-8x7b-instruct",
]
# the first model of each id in the fixture (the later duplicate is invalid)
MODELS = {}
for _m in FIXTURE["models"]:
    if isinstance(_m, dict) and _m.get("id") in VALID and _m["id"] not in MODELS:
        MODELS[_m["id"]] = dict(_m, gallery="default")  # answers name their source

DEFAULT_ORDER = [
    "deepseek-r1-distill-qwen-1.5b", "gemma-2-27b-it", "qwen2.5-coder-7b-instruct",
    "mixtral-8x7b-instruct", "llama-3.1-8b-instruct", "phi-3.5-mini-instruct",
    "whisper-base.en", "llama-3.2-1b-instruct", "mistral-7b-instruct-v0.2", "gemma-3-1b-it",
    "qwen2.5-0.5b-instruct", "starcoder2-3b", "tinyllama-1.1b-chat",
    # no rating: last, by id
    "minimal-model", "nomic-embed-text-v1.5",
]


# --- the reference implementation of the contract's search --------------------------------

def _lower_list(v):
    if v is None:
        return None
    return [x.lower() for x in (v if isinstance(v, list) else [v]) if isinstance(x, str)]


def _date(s):
    if not isinstance(s, str):
        return None
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def _hw(m, key):
    hw = m.get("recommendedHardware")
    return hw.get(key) if isinstance(hw, dict) else None


def _num(v):
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1e300
    return v if ok else None


def ref_fit(m, ram_bytes, vram_bytes):
    """(fit, fit_estimated) of model `m` on a machine of that RAM and VRAM (contract v2)."""
    ram, vram, size = _num(_hw(m, "ramGb")), _num(_hw(m, "vramGb")), _num(m.get("sizeGb"))
    estimated = ram is None and vram is None
    if estimated:
        need_ram = need_vram = size * 1.2 + 0.5 if size is not None else 0
    else:
        need_ram, need_vram = ram if ram is not None else vram, vram if vram is not None else ram
    need_ram, need_vram = need_ram * 1e9, need_vram * 1e9
    if vram_bytes > 0:
        fit = ("full_gpu" if need_vram <= vram_bytes else
               "partial_gpu" if need_ram <= vram_bytes + ram_bytes else "too_large")
    else:
        fit = "cpu" if need_ram <= ram_bytes else "too_large"
    return fit, estimated


def ref_search(params):
    """What the contract says /search answers for `params` (a dict of strings)."""
    ms = [MODELS[i] for i in VALID]
    q = params.get("query", "")
    for term in q.lower().split():
        ms = [m for m in ms if any(term in t for t in
              [m["id"].lower(), m["name"].lower(), (m.get("description") or "").lower()]
              + (_lower_list(m.get("tags")) or []) + (_lower_list(m.get("categories")) or []))]
    for p, field in (("category", "categories"), ("language", "languages"), ("tag", "tags"),
                     ("quantization", "quantization"), ("license", "license")):
        v = params.get(p, "")
        if v:
            ms = [m for m in ms if v.lower() in (_lower_list(m.get(field)) or [])]
    num = {
        "min_rating": (lambda m: m.get("rating"), lambda a, b: a >= b),
        "min_size_gb": (lambda m: m.get("sizeGb"), lambda a, b: a >= b),
        "max_size_gb": (lambda m: m.get("sizeGb"), lambda a, b: a <= b),
        "max_ram_gb": (lambda m: _hw(m, "ramGb"), lambda a, b: a <= b),
        "max_vram_gb": (lambda m: _hw(m, "vramGb"), lambda a, b: a <= b),
    }
    for p, (get, ok) in num.items():
        if params.get(p, "") != "":
            b = float(params[p])
            ms = [m for m in ms if get(m) is not None and ok(get(m), b)]
    sort = params.get("sort") or "rating"
    order = params.get("order") or ("asc" if sort == "name" else "desc")
    key = {
        "rating": lambda m: m.get("rating"),
        "size": lambda m: m.get("sizeGb"),
        "name": lambda m: m["name"].lower(),
        "updated": lambda m: _date(m.get("updatedAt")),
    }[sort]
    have = [m for m in ms if key(m) is not None]
    lack = sorted((m for m in ms if key(m) is None), key=lambda m: m["id"])
    have.sort(key=lambda m: m["id"])                       # ties by id ascending ...
    have.sort(key=key, reverse=(order == "desc"))          # ... (stable sort keeps them)
    ms = have + lack
    limit = int(params.get("limit") or 100)
    offset = int(params.get("offset") or 0)
    return {"total": len(ms), "offset": offset, "limit": limit,
            "ids": [m["id"] for m in ms[offset:offset + limit]]}


class SearchTest(SharedStackTestCase):
    def search(self, params=None, raw=None):
        return self.stack.search(params, raw)

    def check(self, params, ids, total=None):
        r = self.search(params)
        body = self.assertIds(r, ids, f"search {params}")
        self.assertEqual(body["total"], len(ids) if total is None else total, params)
        machine = self.assertJsonAnswer(self.stack.get("/api/models/system"), 200)
        for m in body["models"]:  # whole model objects, as in the gallery, and their fit
            fit, estimated = ref_fit(MODELS[m["id"]], machine["ram_bytes"], machine["vram_bytes"])
            want = dict(MODELS[m["id"]], fit=fit, fit_estimated=estimated)
            self.assertEqual(m, want, f"model {m['id']} in answer to {params}")
        return body

    def check_ref(self, params):
        want = ref_search(params)
        r = self.search(params)
        body = self.assertJsonAnswer(r, 200)
        got = {"total": body["total"], "offset": body["offset"], "limit": body["limit"],
               "ids": [m["id"] for m in body["models"]]}
        self.assertEqual(got, want, f"search {params}")

    # --- the reference itself agrees with the hand-written orders ---

    def test_reference_agrees_with_hand_written_default(self):
        self.assertEqual(ref_search({})["ids"], DEFAULT_ORDER)

    # --- no parameter ---

    def test_default(self):
        body = self.check({}, DEFAULT_ORDER)
        self.assertEqual(body["offset"], 0)
        self.assertEqual(body["limit"], 100)
        self.assertEqual(set(body), {"total", "offset", "limit", "models"})

    def test_unknown_parameters_ignored(self):
        self.check({"foo": "bar", "Query": "nothing-matches-this"}, DEFAULT_ORDER)

    def test_empty_text_filters_ignored(self):
        self.check({"query": "", "category": "", "language": "", "tag": "", "quantization": "",
                    "license": ""}, DEFAULT_ORDER)

    # --- query ---

    def test_query_single_term(self):
        self.check({"query": "qwen"}, ["deepseek-r1-distill-qwen-1.5b",
                                       "qwen2.5-coder-7b-instruct", "qwen2.5-0.5b-instruct"])

    def test_query_case_insensitive(self):
        self.check({"query": "QwEn"}, ["deepseek-r1-distill-qwen-1.5b",
                                       "qwen2.5-coder-7b-instruct", "qwen2.5-0.5b-instruct"])

    def test_query_terms_in_different_fields(self):
        # "qwen" in the name, "coder" a tag
        self.check({"query": "qwen coder"}, ["qwen2.5-coder-7b-instruct"])
        # "phi" in the name, "reasoning" a category
        self.check({"query": "phi reasoning"}, ["phi-3.5-mini-instruct"])
        # a term only in the description
        self.check({"query": "  Alibaba   code  "}, ["qwen2.5-coder-7b-instruct"])

    def test_query_every_term_must_match(self):
        self.check({"query": "qwen whisper"}, [])

    def test_query_substring(self):
        # "7b" also matches "27b" and "8x7b"
        self.check({"query": "7b"}, ["gemma-2-27b-it", "qwen2.5-coder-7b-instruct",
                                     "mixtral-8x7b-instruct", "mistral-7b-instruct-v0.2"])

    def test_query_matches_tag_and_category(self):
        self.check({"query": "rag"}, ["nomic-embed-text-v1.5"])          # a tag
        self.check({"query": "speech"}, ["whisper-base.en"])             # a category
        self.check({"query": "embedding"}, ["nomic-embed-text-v1.5"])

    def test_query_not_other_fields(self):
        # license, quantization and languages are not searched by query
        self.check({"query": "bigcode"}, [])
        self.check({"query": "q5_k_m"}, [])

    def test_query_encoded(self):
        r = self.search(raw="query=qwen+coder")
        self.assertIds(r, ["qwen2.5-coder-7b-instruct"])
        r = self.search(raw="query=qwen%20coder")
        self.assertIds(r, ["qwen2.5-coder-7b-instruct"])

    # --- exact filters ---

    def test_category(self):
        self.check({"category": "CODE"}, ["qwen2.5-coder-7b-instruct", "starcoder2-3b"])
        self.check({"category": "cod"}, [])  # exact, not substring

    def test_language(self):
        self.check({"language": "DE"}, ["mixtral-8x7b-instruct", "llama-3.1-8b-instruct",
                                        "llama-3.2-1b-instruct"])
        self.check({"language": "zh"}, ["deepseek-r1-distill-qwen-1.5b",
                                        "qwen2.5-coder-7b-instruct", "qwen2.5-0.5b-instruct"])

    def test_tag(self):
        # "Coder" in starcoder2's tags matches case-insensitively
        self.check({"tag": "coder"}, ["qwen2.5-coder-7b-instruct", "starcoder2-3b"])
        self.check({"tag": "code"}, [])

    def test_quantization(self):
        self.check({"quantization": "q4_k_m"}, [
            "deepseek-r1-distill-qwen-1.5b", "gemma-2-27b-it", "qwen2.5-coder-7b-instruct",
            "mixtral-8x7b-instruct", "phi-3.5-mini-instruct", "llama-3.2-1b-instruct",
            "gemma-3-1b-it"])
        self.check({"quantization": "Q4_K"}, [])

    def test_license(self):
        self.check({"license": "MIT"}, ["deepseek-r1-distill-qwen-1.5b",
                                        "phi-3.5-mini-instruct", "whisper-base.en"])

    # --- numeric filters ---

    def test_min_rating(self):
        self.check({"min_rating": "4.5"}, ["deepseek-r1-distill-qwen-1.5b", "gemma-2-27b-it",
                                           "qwen2.5-coder-7b-instruct", "mixtral-8x7b-instruct"])
        self.check({"min_rating": "5"}, ["deepseek-r1-distill-qwen-1.5b"])
        # models without a rating never match, even min_rating=0
        self.check({"min_rating": "0"}, DEFAULT_ORDER[:13])

    def test_min_rating_above_five_matches_nothing(self):
        self.check({"min_rating": "5.5"}, [])
        self.check({"min_rating": "1000"}, [])

    def test_size_bounds_inclusive(self):
        self.check({"min_size_gb": "4.14", "max_size_gb": "5.73"},
                   ["qwen2.5-coder-7b-instruct", "llama-3.1-8b-instruct",
                    "mistral-7b-instruct-v0.2"])
        self.check({"min_size_gb": "16.6"}, ["gemma-2-27b-it", "mixtral-8x7b-instruct"])
        self.check({"max_size_gb": "0.14"}, ["whisper-base.en", "nomic-embed-text-v1.5"])
        self.check({"min_size_gb": "2", "max_size_gb": "2"}, ["minimal-model"])

    def test_max_ram_gb(self):
        # whisper (no recommendedHardware), starcoder2 (null) and minimal never match
        self.check({"max_ram_gb": "4"}, [
            "deepseek-r1-distill-qwen-1.5b", "llama-3.2-1b-instruct", "gemma-3-1b-it",
            "qwen2.5-0.5b-instruct", "tinyllama-1.1b-chat", "nomic-embed-text-v1.5"])
        self.check({"max_ram_gb": "1000"}, [i for i in DEFAULT_ORDER if i not in
                                            ("whisper-base.en", "starcoder2-3b", "minimal-model")])

    def test_max_vram_gb(self):
        # tinyllama has recommendedHardware without vramGb: no match
        self.check({"max_vram_gb": "0"}, ["qwen2.5-0.5b-instruct", "nomic-embed-text-v1.5"])

    def test_numbers_in_other_notations(self):
        self.check({"min_rating": "4.50"}, ref_search({"min_rating": "4.5"})["ids"])
        self.check({"max_size_gb": "1e1"}, ref_search({"max_size_gb": "10"})["ids"])

    # --- sorting ---

    def test_sort_rating_explicit(self):
        self.check({"sort": "rating"}, DEFAULT_ORDER)
        self.check({"sort": "rating", "order": "desc"}, DEFAULT_ORDER)

    def test_sort_rating_asc(self):
        # missing ratings stay last; ties (4.6, 3.9) by id ascending
        self.check({"sort": "rating", "order": "asc"}, [
            "tinyllama-1.1b-chat", "starcoder2-3b", "gemma-3-1b-it", "qwen2.5-0.5b-instruct",
            "mistral-7b-instruct-v0.2", "llama-3.2-1b-instruct", "whisper-base.en",
            "phi-3.5-mini-instruct", "llama-3.1-8b-instruct", "mixtral-8x7b-instruct",
            "gemma-2-27b-it", "qwen2.5-coder-7b-instruct", "deepseek-r1-distill-qwen-1.5b",
            "minimal-model", "nomic-embed-text-v1.5"])

    def test_sort_size(self):
        self.check({"sort": "size"}, [
            "mixtral-8x7b-instruct", "gemma-2-27b-it", "llama-3.1-8b-instruct",
            "qwen2.5-coder-7b-instruct", "mistral-7b-instruct-v0.2", "phi-3.5-mini-instruct",
            "minimal-model", "starcoder2-3b", "deepseek-r1-distill-qwen-1.5b", "gemma-3-1b-it",
            "llama-3.2-1b-instruct", "qwen2.5-0.5b-instruct", "tinyllama-1.1b-chat",
            "nomic-embed-text-v1.5", "whisper-base.en"])

    def test_sort_size_asc_ties_by_id(self):
        body = self.check({"sort": "size", "order": "asc", "limit": "6"}, [
            "nomic-embed-text-v1.5", "whisper-base.en", "tinyllama-1.1b-chat",
            "qwen2.5-0.5b-instruct", "gemma-3-1b-it", "llama-3.2-1b-instruct"], total=15)
        self.assertEqual(body["limit"], 6)

    def test_sort_name_case_insensitive_ascending(self):
        # "tinyllama 1.1B chat" is lower-case: it sorts before "Whisper", not after it
        self.check({"sort": "name"}, [
            "deepseek-r1-distill-qwen-1.5b", "gemma-2-27b-it", "gemma-3-1b-it",
            "llama-3.1-8b-instruct", "llama-3.2-1b-instruct", "minimal-model",
            "mistral-7b-instruct-v0.2", "mixtral-8x7b-instruct", "nomic-embed-text-v1.5",
            "phi-3.5-mini-instruct", "qwen2.5-0.5b-instruct", "qwen2.5-coder-7b-instruct",
            "starcoder2-3b", "tinyllama-1.1b-chat", "whisper-base.en"])

    def test_sort_name_desc(self):
        self.check({"sort": "name", "order": "desc", "limit": "3"},
                   ["whisper-base.en", "tinyllama-1.1b-chat", "starcoder2-3b"], total=15)

    def test_sort_updated_compares_dates(self):
        # llama-3.2's "2024-09-25T12:00:00+02:00" is 10:00Z, before llama-3.1's 11:00Z,
        # although its text sorts after; models without updatedAt come last, by id.
        self.check({"sort": "updated"}, [
            "gemma-3-1b-it", "deepseek-r1-distill-qwen-1.5b", "qwen2.5-coder-7b-instruct",
            "llama-3.1-8b-instruct", "llama-3.2-1b-instruct", "qwen2.5-0.5b-instruct",
            "phi-3.5-mini-instruct", "gemma-2-27b-it", "starcoder2-3b",
            "nomic-embed-text-v1.5", "mistral-7b-instruct-v0.2", "tinyllama-1.1b-chat",
            "mixtral-8x7b-instruct", "minimal-model", "whisper-base.en"])

    def test_sort_updated_asc_missing_last(self):
        body = self.check({"sort": "updated", "order": "asc"}, ref_search(
            {"sort": "updated", "order": "asc"})["ids"])
        self.assertEqual([m["id"] for m in body["models"]][-2:],
                         ["minimal-model", "whisper-base.en"])
        self.assertEqual(body["models"][0]["id"], "mixtral-8x7b-instruct")

    # --- paging ---

    def test_limit_offset(self):
        body = self.check({"limit": "3", "offset": "2"}, DEFAULT_ORDER[2:5], total=15)
        self.assertEqual((body["limit"], body["offset"]), (3, 2))

    def test_offset_past_end(self):
        body = self.check({"offset": "100"}, [], total=15)
        self.assertEqual(body["offset"], 100)

    def test_limit_bounds(self):
        self.check({"limit": "1"}, DEFAULT_ORDER[:1], total=15)
        body = self.check({"limit": "1000"}, DEFAULT_ORDER)
        self.assertEqual(body["limit"], 1000)

    def test_pages_cover_everything_once(self):
        seen = []
        for off in range(0, 15, 4):
            body = self.assertJsonAnswer(self.search({"limit": 4, "offset": off}), 200)
            seen += [m["id"] for m in body["models"]]
        self.assertEqual(seen, DEFAULT_ORDER)

    def test_total_counts_before_paging(self):
        body = self.check({"query": "instruct", "limit": "2"},
                          ref_search({"query": "instruct", "limit": "2"})["ids"],
                          total=ref_search({"query": "instruct"})["total"])
        self.assertGreater(body["total"], 2)

    # --- repeated parameters: the last wins ---

    def test_repeated_parameter_last_wins(self):
        r = self.search(raw="sort=size&sort=name")
        self.assertIds(r, ref_search({"sort": "name"})["ids"])
        r = self.search(raw="limit=1&limit=2")
        body = self.assertIds(r, DEFAULT_ORDER[:2])
        self.assertEqual(body["limit"], 2)
        r = self.search(raw="category=code&category=embedding")
        self.assertIds(r, ["nomic-embed-text-v1.5"])
        r = self.search(raw="limit=abc&limit=3")
        self.assertIds(r, DEFAULT_ORDER[:3])

    # --- combined ---

    def test_combined_hand_written(self):
        self.check({"category": "chat", "language": "fr", "max_ram_gb": "16", "sort": "size",
                    "order": "asc"},
                   ["llama-3.2-1b-instruct", "mistral-7b-instruct-v0.2", "llama-3.1-8b-instruct"])
        self.check({"query": "instruct", "tag": "small", "min_rating": "3.9"},
                   ["phi-3.5-mini-instruct", "llama-3.2-1b-instruct", "qwen2.5-0.5b-instruct"])
        self.check({"query": "gemma", "license": "gemma", "max_vram_gb": "2"}, ["gemma-3-1b-it"])
        self.check({"quantization": "Q8_0", "min_rating": "0"}, ["qwen2.5-0.5b-instruct"])
        self.check({"query": "instruct", "category": "chat", "language": "en",
                    "quantization": "q4_k_m", "license": "apache-2.0", "min_rating": "4",
                    "min_size_gb": "1", "max_size_gb": "30", "max_ram_gb": "64",
                    "max_vram_gb": "32", "sort": "size", "order": "asc", "limit": "5",
                    "offset": "0"},
                   ["qwen2.5-coder-7b-instruct", "mixtral-8x7b-instruct"])

    def test_combinations_against_reference(self):
        choices = {
            "query": ["", "instruct", "qwen", "7b", "small model", "chat"],
            "category": ["", "chat", "code", "reasoning"],
            "language": ["", "en", "fr", "ZH"],
            "tag": ["", "small", "instruct", "meta"],
            "quantization": ["", "q4_k_m", "Q8_0"],
            "license": ["", "apache-2.0", "mit"],
            "min_rating": ["", "0", "3.9", "4.4"],
            "min_size_gb": ["", "0.5", "2"],
            "max_size_gb": ["", "5", "30"],
            "max_ram_gb": ["", "4", "8", "16"],
            "max_vram_gb": ["", "2", "6"],
            "sort": ["", "rating", "size", "name", "updated"],
            "order": ["", "asc", "desc"],
            "limit": ["", "1", "3", "1000"],
            "offset": ["", "0", "1", "5"],
        }
        rnd = random.Random(20261126)
        cases = []
        for _ in range(150):
            p = {k: rnd.choice(v) for k, v in choices.items()}
            p = {k: v for k, v in p.items() if v != ""}
            if "min_size_gb" in p and "max_size_gb" in p and \
                    float(p["min_size_gb"]) > float(p["max_size_gb"]):
                del p["min_size_gb"]
            cases.append(p)
        # every pair of single filters too
        singles = [("category", "chat"), ("language", "en"), ("tag", "small"),
                   ("min_rating", "4"), ("max_ram_gb", "8"), ("max_vram_gb", "4"),
                   ("min_size_gb", "1"), ("max_size_gb", "5"), ("query", "instruct"),
                   ("quantization", "q4_k_m"), ("license", "apache-2.0")]
        for (a, va), (b, vb) in itertools.combinations(singles, 2):
            cases.append({a: va, b: vb})
        for p in cases:
            with self.subTest(params=p):
                self.check_ref(p)

    # --- malformed values: 400 invalid_parameter naming the parameter ---

    def bad(self, params, parameter):
        r = self.search(raw=params if isinstance(params, str) else qs(params))
        err = self.assertError(r, 400, "invalid_parameter", parameter)
        return err

    def test_malformed_numbers(self):
        for p in ("min_rating", "min_size_gb", "max_size_gb", "max_ram_gb", "max_vram_gb"):
            for v in ("abc", "NaN", "nan", "inf", "-inf", "Infinity", "1e999", "-1", "-0.5",
                      "1,5", "4.5x", "0x", " 4", "1..2"):
                with self.subTest(param=p, value=v):
                    self.bad({p: v}, p)

    def test_malformed_limit(self):
        for v in ("0", "1001", "1.5", "abc", "-1", "1e2", "99999999999999999999"):
            with self.subTest(value=v):
                self.bad({"limit": v}, "limit")

    def test_malformed_offset(self):
        for v in ("-1", "1.5", "x", "1e3"):
            with self.subTest(value=v):
                self.bad({"offset": v}, "offset")

    def test_malformed_sort_order(self):
        for v in ("Rating", "RATING", "popularity", "size desc", "name,size"):
            with self.subTest(sort=v):
                self.bad({"sort": v}, "sort")
        for v in ("ASC", "Desc", "up", "ascending"):
            with self.subTest(order=v):
                self.bad({"order": v}, "order")

    def test_empty_number_page_sort_order(self):
        # an empty text filter is ignored (test_empty_text_filters_ignored), but an empty
        # number, limit, offset, sort or order is malformed, named in the error
        for p in ("min_rating", "min_size_gb", "max_size_gb", "max_ram_gb", "max_vram_gb",
                  "limit", "offset", "sort", "order"):
            for raw in (f"{p}=", p, f"query=qwen&{p}=&category=code", f"{p}=1&{p}="):
                with self.subTest(raw=raw):
                    err = self.bad(raw, p)
                    self.assertIn(p, err["message"])
                    self.assertIn("empty", err["message"])
        err = self.bad("min_rating=", "min_rating")
        self.assertEqual(err["message"], "min_rating must be a number, got an empty value")
        err = self.bad({"limit": ""}, "limit")
        self.assertEqual(err["message"],
                         "limit must be an integer from 1 to 1000, got an empty value")
        # the last value wins: an empty one before a good one is fine
        body = self.assertIds(self.search(raw="limit=&limit=2"), DEFAULT_ORDER[:2])
        self.assertEqual(body["limit"], 2)

    def test_min_size_above_max_size(self):
        self.bad({"min_size_gb": "5", "max_size_gb": "2"}, "min_size_gb")

    def test_first_malformed_wins_nothing_else_leaks(self):
        err = self.bad({"limit": "0", "query": "qwen"}, "limit")
        self.assertIn("limit", err["message"])

    def test_malformed_percent_encoding_is_json(self):
        r = self.search(raw="query=%zz")
        self.assertIn(r.status, (200, 400))
        self.assertJsonAnswer(r)

    def test_nul_in_value(self):
        r = self.search(raw="category=ch%00at")
        self.assertJsonAnswer(r)
        if r.status == 200:
            self.assertEqual(r.json["total"], 0)
        else:
            self.assertError(r, 400, "invalid_parameter", "category")

    # --- methods ---

    def test_head_search(self):
        r = self.stack.head("/api/models/gallery/search?query=qwen")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")

    def test_wrong_method(self):
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            with self.subTest(method=method):
                r = self.stack.request(method, "/api/models/gallery/search")
                self.assertError(r, 405, "method_not_allowed", None)
                self.assertIn("GET", r.header("allow", ""))


if __name__ == "__main__":
    mgtest.main()
