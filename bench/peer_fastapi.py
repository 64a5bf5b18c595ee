"""peer_fastapi.py - the benchmark's baseline: a straightforward FastAPI + uvicorn
implementation of GET /api/models/gallery, GET /api/models/gallery/search and
GET /api/models/gallery/facets as the contract (shared CONTRACT.md, "Search parameters" and
Version 2 "facets") describes them. It loads the gallery once at import,
then filters and sorts the whole list on every request (no index, no pre-sort), and returns
plain dicts that FastAPI serialises, as a first Python implementation would.

    MG_PEER_GALLERY=gallery.json python3 -m uvicorn --app-dir bench peer_fastapi:app \
        --host 127.0.0.1 --port 8001 --workers 2

MG_PEER_GALLERY may be a source gallery or our validated cache/gallery_cache.json; models
missing a required field are left out.
"""
import hashlib
import json
import math
import os
from datetime import datetime

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

REQUIRED = ("id", "name", "checksum", "downloadUrl", "sizeGb")
FILTERS = ("category", "language", "tag", "quantization", "license", "family")
FILTER_FIELD = {"category": "categories", "language": "languages", "tag": "tags",
                "quantization": "quantization", "license": "license", "family": "family"}
FACETS = ("category", "language", "tag", "quantization", "license", "family")
NUMBERS = ("min_rating", "min_size_gb", "max_size_gb", "max_ram_gb", "max_vram_gb")
SORTS = ("rating", "size", "name", "updated")


def peer_load(path):
    with open(path, "rb") as f:
        doc = json.load(f)
    models = [m for m in doc.get("models") or []
              if isinstance(m, dict) and all(m.get(k) is not None for k in REQUIRED)]
    payload = {"version": doc.get("version"), "generatedAt": doc.get("generatedAt"),
               "models": models}
    body = json.dumps(payload, separators=(",", ":")).encode()
    return payload, body, '"%s"' % hashlib.sha1(body).hexdigest()


GALLERY, GALLERY_BODY, GALLERY_ETAG = peer_load(os.environ.get("MG_PEER_GALLERY", "gallery.json"))
MODELS = GALLERY["models"]
app = FastAPI()


class BadParam(Exception):
    def __init__(self, name, message):
        super().__init__(message)
        self.name, self.message = name, message


@app.exception_handler(BadParam)
def peer_bad_param(_request, exc):
    return JSONResponse(status_code=400, content={"error": {
        "code": "invalid_parameter", "message": exc.message, "parameter": exc.name}})


def peer_number(name, raw):
    try:
        v = float(raw)
    except ValueError:
        raise BadParam(name, f"{name} must be a number") from None
    if math.isnan(v) or math.isinf(v) or v < 0:
        raise BadParam(name, f"{name} must be a finite number >= 0")
    return v


def peer_int(name, raw, lo, hi):
    if not raw.isdigit():
        raise BadParam(name, f"{name} must be an integer")
    v = int(raw)
    if v < lo or v > hi:
        raise BadParam(name, f"{name} must be within {lo}-{hi}")
    return v


def peer_params(qp):
    """The contract's parameters from the query (the last of a repeated one wins)."""
    p = {"terms": qp.get("query", "").lower().split()}
    for name in FILTERS:
        p[name] = qp.get(name, "").lower() or None
    for name in NUMBERS:
        raw = qp.get(name)
        if raw is None:
            p[name] = None
        elif raw == "" and name != "min_rating":
            raise BadParam(name, f"{name} must not be empty")
        else:
            p[name] = peer_number(name, raw) if raw != "" else None
    if p["min_size_gb"] is not None and p["max_size_gb"] is not None \
            and p["min_size_gb"] > p["max_size_gb"]:
        raise BadParam("min_size_gb", "min_size_gb is above max_size_gb")
    p["sort"] = qp.get("sort", "rating")
    if p["sort"] not in SORTS:
        raise BadParam("sort", "sort must be rating, size, name or updated")
    order = qp.get("order")
    if order is not None and order not in ("asc", "desc"):
        raise BadParam("order", "order must be asc or desc")
    p["desc"] = (order == "desc") if order else p["sort"] != "name"
    p["limit"] = peer_int("limit", qp.get("limit", "100"), 1, 1000)
    p["offset"] = peer_int("offset", qp.get("offset", "0"), 0, 1 << 62)
    return p


def peer_field_has(m, field, value):
    v = m.get(field)
    if isinstance(v, list):
        return any(isinstance(x, str) and x.lower() == value for x in v)
    return isinstance(v, str) and v.lower() == value


def peer_text_has(m, term):
    texts = [m.get("id"), m.get("name"), m.get("description")]
    texts += (m.get("tags") or []) + (m.get("categories") or [])
    return any(isinstance(t, str) and term in t.lower() for t in texts)


def peer_hw(m, key):
    hw = m.get("recommendedHardware")
    return hw.get(key) if isinstance(hw, dict) else None


def peer_predicates(p):
    """One test per parameter in effect."""
    tests = []
    for name in FILTERS:
        if p[name] is not None:
            tests.append(lambda m, f=FILTER_FIELD[name], v=p[name]: peer_field_has(m, f, v))
    bounds = (("min_rating", lambda m: m.get("rating"), 1),
              ("min_size_gb", lambda m: m.get("sizeGb"), 1),
              ("max_size_gb", lambda m: m.get("sizeGb"), -1),
              ("max_ram_gb", lambda m: peer_hw(m, "ramGb"), -1),
              ("max_vram_gb", lambda m: peer_hw(m, "vramGb"), -1))
    for name, get, sign in bounds:
        if p[name] is not None:
            tests.append(lambda m, g=get, b=p[name], s=sign:
                         g(m) is not None and s * g(m) >= s * b)
    for term in p["terms"]:
        tests.append(lambda m, t=term: peer_text_has(m, t))
    return tests


def peer_sort_key(m, sort):
    if sort == "rating":
        return m.get("rating")
    if sort == "size":
        return m.get("sizeGb")
    if sort == "name":
        return m["name"].lower()
    u = m.get("updatedAt")
    try:
        return datetime.fromisoformat(u.replace("Z", "+00:00")).timestamp() if u else None
    except (ValueError, AttributeError):
        return None


def peer_sorted(models, sort, desc):
    """Sorted by key (ties by id ascending); models without the key last either way."""
    keyed = [(peer_sort_key(m, sort), m) for m in models]
    have = [km for km in keyed if km[0] is not None]
    if sort == "name" and desc:  # text keys cannot be negated: two stable passes
        have.sort(key=lambda km: km[1]["id"])
        have.sort(key=lambda km: km[0], reverse=True)
    else:
        sign = -1 if desc else 1
        have.sort(key=(lambda km: (km[0], km[1]["id"])) if sort == "name"
                  else (lambda km: (sign * km[0], km[1]["id"])))
    missing = sorted((m for k, m in keyed if k is None), key=lambda m: m["id"])
    return [m for _, m in have] + missing


@app.get("/api/models/gallery")
def gallery(request: Request):
    if request.headers.get("if-none-match") == GALLERY_ETAG:
        return Response(status_code=304, headers={"ETag": GALLERY_ETAG})
    return Response(GALLERY_BODY, media_type="application/json", headers={"ETag": GALLERY_ETAG})


@app.get("/api/models/gallery/search")
def search(request: Request):
    p = peer_params(request.query_params)
    tests = peer_predicates(p)
    found = peer_sorted([m for m in MODELS if all(t(m) for t in tests)], p["sort"], p["desc"])
    return {"total": len(found), "offset": p["offset"], "limit": p["limit"],
            "models": found[p["offset"]:p["offset"] + p["limit"]]}


def peer_facet_counts(models, field, limit):
    """[{value, count}] of the lower-cased values of `field`, by count then value."""
    counts = {}
    for m in models:
        v = m.get(field)
        for x in {x.lower() for x in (v if isinstance(v, list) else [v]) if isinstance(x, str) and x}:
            counts[x] = counts.get(x, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return [{"value": k, "count": c} for k, c in ranked]


@app.get("/api/models/gallery/facets")
def facets(request: Request):
    p = peer_params(request.query_params)
    limit = peer_int("facet_limit", request.query_params.get("facet_limit", "50"), 1, 1000)
    out = {}
    for name in FACETS:
        tests = peer_predicates(dict(p, **{name: None}))  # every filter but its own
        out[name] = peer_facet_counts([m for m in MODELS if all(t(m) for t in tests)],
                                      FILTER_FIELD[name], limit)
    out["fit"] = []
    total = sum(1 for m in MODELS if all(t(m) for t in peer_predicates(p)))
    return {"total": total, "facets": out}
