#!/usr/bin/env python3
"""test_fit.py - the machine profile and how models fit it, against the real stack:
GET /api/models/system with server.json's machine override (and the same keys read again
after a change, no restart), the fit classes full_gpu, partial_gpu, cpu and too_large for
models with recommendedHardware and for models without it (estimated from the size) in
search answers (fit, fit_estimated), the search parameter fit, the fit facet, and
GET /api/models/gallery/{id}/preflight (disk, fit, already installed, reasons; nothing
queued; 404 and 400)."""

import mgtest
from mgtest import SharedStackTestCase, Stack, wait_until

SHA = "sha256:" + "ab" * 32


def hw_model(mid, size_gb, ram=None, vram=None):
    m = {"id": mid, "name": mid, "checksum": SHA, "sizeGb": size_gb,
         "downloadUrl": f"https://example.com/models/{mid}.gguf"}
    if ram is not None or vram is not None:
        m["recommendedHardware"] = {k: v for k, v in (("ramGb", ram), ("vramGb", vram))
                                    if v is not None}
    return m


MODELS = [
    hw_model("fit-gpu-small", 4.0, ram=8, vram=6),      # 6 <= 8 VRAM
    hw_model("fit-gpu-split", 7.0, ram=20, vram=12),    # 12 > 8, 20 <= 8 + 16
    hw_model("fit-huge", 40.0, ram=64, vram=48),        # 64 > 24
    hw_model("fit-est-small", 2.0),                     # 2.9 GB estimated
    hw_model("fit-est-mid", 10.0),                      # 12.5 GB estimated
    hw_model("fit-est-huge", 30.0),                     # 36.5 GB estimated
    hw_model("fit-disk", 1e6, ram=1, vram=1),           # a petabyte: no disk has it
    hw_model("fit-installed", 0.001, ram=1, vram=0),
]
GPU = {"machine": {"ram_gb": 16, "vram_gb": 8}}
CPU = {"machine": {"ram_gb": 16, "vram_gb": 0}}
WANT_GPU = {"fit-gpu-small": ("full_gpu", False), "fit-gpu-split": ("partial_gpu", False),
            "fit-huge": ("too_large", False), "fit-est-small": ("full_gpu", True),
            "fit-est-mid": ("partial_gpu", True), "fit-est-huge": ("too_large", True)}
WANT_CPU = {"fit-gpu-small": ("cpu", False), "fit-gpu-split": ("too_large", False),
            "fit-huge": ("too_large", False), "fit-est-small": ("cpu", True),
            "fit-est-mid": ("cpu", True), "fit-est-huge": ("too_large", True)}
PREFLIGHT_KEYS = {"model_id", "ok", "needs_bytes", "free_bytes", "disk_ok", "fit",
                  "fit_estimated", "already_installed", "reasons", "node"}


class FitTest(SharedStackTestCase):
    @classmethod
    def setUpClass(cls):
        reg = {"models": {"fit-installed": {
            "id": "fit-installed", "name": "I", "path": "models/llm/fit-installed.gguf",
            "size": 3, "installedAt": "2025-01-01T00:00:00+00:00", "backend": "gallery",
            "active": False, "checksum": SHA}}}
        cls.stack = Stack(gallery={"version": 1, "generatedAt": "2025-01-01T00:00:00Z",
                                   "models": MODELS}, server=GPU, registry=reg)
        cls.stack.write_file("models/llm/fit-installed.gguf", b"abc")

    def setUp(self):
        self.use(GPU)

    def use(self, server):
        self.stack.write_json("config/server.json", server)
        want = server["machine"]["vram_gb"] * 10 ** 9
        wait_until(lambda: self.system()["vram_bytes"] == want, 5, what="the new settings")

    def system(self):
        return self.assertJsonAnswer(self.stack.get("/api/models/system"), 200)

    def preflight(self, mid):
        body = self.assertJsonAnswer(self.stack.get(f"/api/models/gallery/{mid}/preflight"), 200)
        self.assertEqual(set(body) - {"needs_memory_bytes"}, PREFLIGHT_KEYS, body)
        self.assertEqual(body["model_id"], mid)
        return body

    def test_system_profile(self):
        s = self.system()
        self.assertEqual(s["ram_bytes"], 16 * 10 ** 9, s)
        self.assertEqual(s["gpus"], [{"name": "configured (server.json machine.vram_gb)",
                                      "vram_bytes": 8 * 10 ** 9}], s)
        self.assertEqual(s["configured"], {"ram_gb": 16, "vram_gb": 8}, s)
        self.assertGreaterEqual(s["cpu_cores"], 1)
        self.assertTrue(0 <= s["ram_available_bytes"] <= s["ram_bytes"], s)
        self.assertTrue(0 < s["disk"]["free_bytes"] <= s["disk"]["total_bytes"], s)
        self.use(CPU)
        s = self.system()
        self.assertEqual((s["gpus"], s["vram_bytes"]), ([], 0), s)

    def test_fit_classes_with_and_without_hardware(self):
        for server, want in ((GPU, WANT_GPU), (CPU, WANT_CPU)):
            self.use(server)
            for mid, (fit, estimated) in want.items():
                with self.subTest(machine=server["machine"], model=mid):
                    p = self.preflight(mid)
                    self.assertEqual((p["fit"], p["fit_estimated"]), (fit, estimated), p)
                    self.assertEqual(p["ok"], fit != "too_large", p)
                    codes = [r["code"] for r in p["reasons"]]
                    self.assertEqual(codes, ["too_large"] if fit == "too_large" else [], p)

    def search(self, **params):
        return self.assertJsonAnswer(self.stack.search(dict({"limit": 1000}, **params)), 200)

    def test_search_answers_carry_fit(self):
        for server, want in ((GPU, WANT_GPU), (CPU, WANT_CPU)):
            self.use(server)
            models = {m["id"]: m for m in self.search()["models"]}
            for mid, (fit, estimated) in want.items():
                with self.subTest(machine=server["machine"], model=mid):
                    self.assertEqual((models[mid]["fit"], models[mid]["fit_estimated"]),
                                     (fit, estimated), models[mid])
                    self.assertEqual(models[mid]["checksum"], SHA, "the model is whole")
            classes = sorted({f for f, _ in want.values()})
            for fit in classes:
                got = {m["id"] for m in self.search(fit=fit)["models"]}
                self.assertEqual(got & set(want), {m for m, (f, _) in want.items() if f == fit})
            both = self.search(fit=",".join(classes[:2]))
            self.assertTrue(all(m["fit"] in classes[:2] for m in both["models"]), both)

    def test_fit_parameter_errors_and_facet(self):
        self.assertError(self.stack.search({"fit": "gpu"}), 400, "invalid_parameter", "fit")
        self.assertError(self.stack.search({"fit": "cpu,Full_GPU"}), 400, "invalid_parameter",
                         "fit")
        self.assertEqual(self.search(fit="")["total"], len(MODELS))
        facets = self.assertJsonAnswer(
            self.stack.get("/api/models/gallery/facets?" + mgtest.qs({"fit": "too_large"})), 200)
        self.assertEqual(facets["total"], 2)  # fit-huge and fit-est-huge
        counts = {f["value"]: f["count"] for f in facets["facets"]["fit"]}
        # the fit facet counts every class: its own filter does not apply to it
        self.assertEqual(counts, {"full_gpu": 4, "partial_gpu": 2, "too_large": 2}, facets)
        self.assertEqual([f["value"] for f in facets["facets"]["fit"]],
                         ["full_gpu", "partial_gpu", "too_large"], "by count, then value")
        self.assertEqual(sum(f["count"] for f in facets["facets"]["license"]), 0, facets)
        self.use(CPU)  # another machine: other counts, not the worker's earlier answer
        facets = self.assertJsonAnswer(self.stack.get("/api/models/gallery/facets"), 200)
        counts = {f["value"]: f["count"] for f in facets["facets"]["fit"]}
        self.assertEqual(counts, {"cpu": 5, "too_large": 3}, facets)

    def test_preflight_disk_and_installed(self):
        p = self.preflight("fit-disk")
        self.assertEqual((p["ok"], p["disk_ok"]), (False, False), p)
        self.assertGreater(p["needs_bytes"], p["free_bytes"], p)
        self.assertEqual([r["code"] for r in p["reasons"]], ["insufficient_storage"], p)
        self.assertIn("GB", p["reasons"][0]["message"])
        p = self.preflight("fit-gpu-small")
        self.assertTrue(p["disk_ok"], p)
        self.assertEqual(p["needs_bytes"], 4 * 10 ** 9 + 256 * 1024 * 1024, p)
        self.assertIs(p["already_installed"], False, p)
        p = self.preflight("fit-installed")
        self.assertEqual((p["ok"], p["already_installed"]), (False, True), p)
        self.assertEqual([r["code"] for r in p["reasons"]], ["already_installed"], p)
        jobs = self.assertJsonAnswer(self.stack.get("/api/models/jobs"), 200)
        self.assertEqual(jobs["total"], 0, "a preflight queues nothing")

    def test_preflight_errors(self):
        self.assertError(self.stack.get("/api/models/gallery/no-such-model/preflight"), 404,
                         "model_not_found", "id")
        self.assertError(self.stack.get("/api/models/gallery/..%2Fx/preflight"), 400,
                         "invalid_model_id", "id")
        self.assertError(self.stack.post("/api/models/gallery/fit-huge/preflight"), 405,
                         "method_not_allowed", None, "allowed: GET, HEAD")
        self.assertError(self.stack.post("/api/models/system"), 405, "method_not_allowed", None,
                         "allowed: GET, HEAD")

    def test_bad_machine_settings_refused(self):
        self.stack.write_json("config/server.json", {"machine": {"ram_gb": -1}})
        try:
            r = self.stack.post("/api/models/cleanup")
            self.assertError(r, 503, "config_unavailable", None)
            self.assertIn("machine.ram_gb", self.stack.log("fcgi") + r.json["error"]["message"])
        finally:
            self.use(GPU)


if __name__ == "__main__":
    mgtest.main()
