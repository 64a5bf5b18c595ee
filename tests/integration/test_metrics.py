#!/usr/bin/env python3
"""test_metrics.py - GET /metrics through the real stack: Prometheus text format (one HELP and
TYPE per family, then its samples), jobs by status, bytes downloaded, download failures by
code, gallery models and source state, request counts by route, method and status that every
FastCGI worker adds to (exact counts), and a JSON 403 for any client but 127.0.0.1."""

import http.client
import json
import re
import socket

import mgtest
from test_install import InstallCase, model

GOOD = "it-m-good"
MISMATCH = "it-m-mismatch"
MISSING = "it-m-404"
SAMPLE = re.compile(r'^([a-z_]+)(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? (\d+)$')


def metrics_models(dl):
    size, digest = dl.files[f"{GOOD}.gguf"]
    return [model(GOOD, dl.url(f"{GOOD}.gguf"), digest, size),
            model(MISMATCH, dl.url(f"{GOOD}.gguf"), "1" * 64, size),
            model(MISSING, dl.url("nothing-here.gguf"), "2" * 64, size)]


class MetricsTest(InstallCase):
    @classmethod
    def setUpClass(cls):
        cls.start(metrics_models, {f"{GOOD}.gguf": 300 * 1024 + 5})

    def scrape(self):
        r = self.stack.get("/metrics")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("content-type"), "text/plain; version=0.0.4; charset=utf-8")
        samples, typed = {}, {}
        for line in r.body.decode().splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(" ")
                self.assertNotIn(name, typed, f"two TYPE lines for {name}")
                typed[name] = kind
                continue
            if line.startswith("# HELP "):
                continue
            m = SAMPLE.match(line)
            self.assertIsNotNone(m, f"not a sample line: {line!r}")
            self.assertIn(m.group(1), typed, f"{line!r} before its TYPE line")
            samples[line.rsplit(" ", 1)[0]] = int(m.group(4))
        return samples, typed

    def test_jobs_downloads_gallery_and_requests(self):
        for mid in (GOOD, MISMATCH, MISSING):
            self.wait_job(self.post_install(mid)["job_id"])
        self.assertError(self.stack.get("/api/models/no/such/endpoint"), 404, "not_found", None)
        samples, typed = self.scrape()
        self.assertEqual(samples['mg_jobs{status="installed"}'], 1, samples)
        self.assertEqual(samples['mg_jobs{status="failed"}'], 2)
        self.assertEqual(samples['mg_jobs{status="queued"}'], 0)
        self.assertEqual(typed["mg_jobs"], "gauge")
        self.assertEqual(samples["mg_download_bytes_total"],
                         self.dl.path_stats(f"{GOOD}.gguf")["bytes"], "bytes downloaded")
        self.assertEqual(typed["mg_download_bytes_total"], "counter")
        self.assertEqual(samples['mg_download_failures_total{code="checksum_mismatch"}'], 1)
        self.assertEqual(samples['mg_download_failures_total{code="http_404"}'], 1)
        self.assertEqual(samples['mg_jobs_finished_total{status="installed"}'], 1)
        self.assertEqual(samples['mg_gallery_models{source="default"}'], 3)
        self.assertEqual(samples['mg_gallery_source_ok{source="default"}'], 1)
        install = ('mg_http_requests_total{route="/api/models/gallery/{id}/install",'
                   'method="POST",status="202"}')
        self.assertEqual(samples[install], 3)
        self.assertEqual(samples['mg_http_requests_total{route="unmatched",method="GET",'
                                 'status="404"}'], 1)
        self.assertGreaterEqual(samples['mg_http_requests_total{route="/api/models/jobs/{id}",'
                                        'method="GET",status="200"}'], 3)

    def test_every_worker_counts(self):
        key = 'mg_http_requests_total{route="/api/models/health",method="GET",status="200"}'
        before = self.scrape()[0].get(key, 0)
        for _ in range(40):
            self.assertEqual(self.stack.get("/api/models/health").status, 200)
        self.assertEqual(self.scrape()[0][key], before + 40)
        key = 'mg_http_requests_total{route="/metrics",method="GET",status="200"}'
        n = self.scrape()[0][key]
        self.assertEqual(self.scrape()[0][key], n + 1)

    def test_other_hosts_get_a_json_403(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.stack.port, timeout=10,
                                          source_address=("127.0.0.2", 0))
        try:
            conn.request("GET", "/metrics")
            r = conn.getresponse()
            body = r.read()
        except OSError as e:  # no 127.0.0.2 on this machine's loopback
            self.skipTest(f"cannot connect from 127.0.0.2: {e}")
        finally:
            conn.close()
        self.assertEqual(r.status, 403, body)
        self.assertTrue(r.getheader("content-type", "").startswith("application/json"))
        self.assertEqual(json.loads(body)["error"]["code"], "forbidden")
        # the API itself is not restricted that way
        s = socket.create_connection(("127.0.0.1", self.stack.port), 10, ("127.0.0.2", 0))
        s.close()


if __name__ == "__main__":
    mgtest.main()
