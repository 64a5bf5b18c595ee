#!/usr/bin/env python3
"""test_mgctl.py - the command-line client mgctl run as a binary against the real stack and a
real download server: search, show, system and preflight (text and --json), install with the
progress drawn as plain lines on a non-terminal and as a bar when asked, --no-wait, jobs,
pause, resume and cancel, one job with the URL that served it (jobs show), the gallery
sources with their signature state (gallery status), ls, rm, update, verify and cleanup, and
the exit codes scripts rely
on: 0 done, 2 usage, 3 no server, 4 not found, 5 refused for the state (already installed,
up to date, a preflight that is not ok), 6 the job failed, 7 paused or cancelled, 8 token
refused."""

import json
import os
import re
import subprocess

import mgtest
from mgtest import wait_until
from test_install import SLOW, InstallCase, MiB, file_sha256, model

GOOD = "it-cli-good"
SMALL = "it-cli-small"
BAD = "it-cli-bad"
SLOWM = "it-cli-slow"
HUGE = "it-cli-huge"
HOSTILE = "it-cli-hostile"
# A gallery's text that would drive a terminal or forge a line, printed raw
HOSTILE_NAME = "Evil\x1b[2J\x1b]0;x\x07 \u009b31m \nforged line\x7f"
LINE = re.compile(r"^(downloading|verifying|queued|installed) +\d+\.\d% +[\d.]+ [KMGT]?B / [\d.]+ [KMGT]?B"
                  r"( +[\d.]+ [KMGT]?B/s)?( +\d+:\d\d left)?$")


def models(dl):
    out = [model(m, dl.url(f"{m}.gguf"), dl.files[f"{m}.gguf"][1], dl.files[f"{m}.gguf"][0],
                 description=f"mgctl test model {m}", tags=["cli"], rating=4.5)
           for m in (GOOD, SMALL, SLOWM)]
    out.append(model(BAD, dl.url(f"{SMALL}.gguf"), "0" * 64, dl.files[f"{SMALL}.gguf"][0]))
    out.append(model(HUGE, dl.url(f"{SMALL}.gguf"), "0" * 64, 1, sizeGb=1e6,
                     recommendedHardware={"ramGb": 4096, "vramGb": 0}))
    out.append(model(HOSTILE, dl.url(f"{SMALL}.gguf"), "0" * 64, 1, name=HOSTILE_NAME,
                     description="hostile text", tags=["hostile"]))
    return out


class MgctlTest(InstallCase):
    @classmethod
    def setUpClass(cls):
        files = {f"{GOOD}.gguf": 3 * MiB, f"{SMALL}.gguf": 256 * 1024, f"{SLOWM}.gguf": 4 * MiB}
        cls.start(models, files)
        cls.exe = os.path.join(mgtest.bin_dir(), "mgctl")

    def mgctl(self, *args, url=None, env=None, timeout=60):
        """Runs mgctl with --url of the stack; returns (exit code, stdout, stderr)."""
        e = {k: v for k, v in os.environ.items() if k not in ("MG_URL", "MG_API_TOKEN")}
        e.update(env or {})
        p = subprocess.run([self.exe, "--url", url or self.stack.url(), *args], env=e,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout * SLOW)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def ok(self, *args, **kw):
        rc, out, err = self.mgctl(*args, **kw)
        self.assertEqual(rc, 0, f"mgctl {' '.join(args)}: {rc}\n{out}\n{err}")
        return out, err

    def code(self, want, *args, **kw):
        rc, out, err = self.mgctl(*args, **kw)
        self.assertEqual(rc, want, f"mgctl {' '.join(args)}: {rc}, wanted {want}\n{out}\n{err}")
        return out, err

    def test_search_show_system_preflight(self):
        out, _ = self.ok("search", "mgctl", "test")
        self.assertIn(GOOD, out)
        self.assertRegex(out, r"^ID +SIZE +RATING +FIT +NAME", "a table with headers")
        self.assertIn("3 of 3 models", out)
        body = json.loads(self.ok("--json", "search", "--tag", "cli", "--sort=name", "--limit", "2")[0])
        self.assertEqual((body["total"], body["limit"], len(body["models"])), (3, 2, 2), body)
        self.code(2, "search", "--bogus", "x")
        self.code(1, "search", "--limit", "0")  # the server's 400
        out, _ = self.ok("show", GOOD)
        self.assertRegex(out, rf"(?m)^id +{GOOD}$")
        self.assertRegex(out, r"(?m)^installed +(no|installed)$")
        self.assertRegex(out, r"(?m)^fit +(full_gpu|partial_gpu|cpu|too_large)")
        shown = json.loads(self.ok("show", GOOD, "--json")[0])
        self.assertEqual(shown["model"]["id"], GOOD)
        self.assertIn("fit", shown["preflight"])
        self.code(4, "show", "no-such-model")
        out, _ = self.ok("system")
        self.assertRegex(out, r"(?m)^RAM +\S+ \S*B \(")
        self.assertIn("CPU cores", out)
        self.assertGreater(json.loads(self.ok("system", "--json")[0])["ram_bytes"], 0)
        out, _ = self.code(5, "preflight", HUGE)
        self.assertIn("not now", out)
        self.assertIn("insufficient_storage", out)
        body = json.loads(self.code(5, "--json", "preflight", HUGE)[0])
        self.assertIs(body["ok"], False)
        self.ok("preflight", SMALL)

    def test_gallery_text_printed_inert(self):
        def assertPrintable(out):
            bad = [hex(ord(ch)) for ch in out
                   if (ord(ch) < 0x20 and ch != "\n") or 0x7f <= ord(ch) <= 0x9f]
            self.assertEqual(bad, [], repr(out))
        out, _ = self.ok("show", HOSTILE)
        assertPrintable(out)
        self.assertRegex(out, r"(?m)^name +Evil\?\[2J\?\]0;x\? \?31m \?forged line\?$")
        self.assertNotRegex(out, r"(?m)^forged line")
        out, _ = self.ok("search", "hostile")
        assertPrintable(out)
        self.assertIn("Evil?[2J", out)
        # --json passes the text on as it came (JSON escapes it)
        self.assertEqual(json.loads(self.ok("--json", "show", HOSTILE)[0])["model"]["name"],
                         HOSTILE_NAME)

    def test_install_with_plain_progress_lines(self):
        size, digest = self.dl.files[f"{GOOD}.gguf"]
        self.dl.control(throttle=1 * MiB)
        out, err = self.ok("--progress=plain", "install", GOOD)
        self.assertEqual(out.strip(), f"{GOOD} installed")
        lines = [ln for ln in err.splitlines() if ln and not ln.startswith(f"{GOOD}: job ")]
        self.assertTrue(lines, err)
        for ln in lines:
            self.assertRegex(ln, LINE)
        downloading = [ln for ln in lines if ln.startswith("downloading")]
        self.assertGreaterEqual(len(downloading), 2, err)
        self.assertTrue(any(re.search(r"B/s", ln) for ln in downloading), err)
        self.assertTrue(any(re.search(r"\d+:\d\d left", ln) for ln in downloading), err)
        self.assertNotIn("\r", err, "no carriage returns on a non-terminal")
        self.assertEqual(file_sha256(self.llm_file(GOOD)), digest)
        jobs = json.loads(self.ok("--json", "jobs")[0])["jobs"]
        job = [j for j in jobs if j["model_id"] == GOOD][0]
        self.assertEqual(job["source_url"], self.dl.url(f"{GOOD}.gguf"), job)
        out, _ = self.ok("jobs", "show", job["job_id"])
        self.assertRegex(out, rf"(?m)^job +{job['job_id']}$")
        self.assertRegex(out, r"(?m)^status +installed$")
        self.assertRegex(out, rf"(?m)^source +{re.escape(self.dl.url(f'{GOOD}.gguf'))}$")
        self.assertEqual(json.loads(self.ok("--json", "jobs", "show", job["job_id"])[0]), job)
        self.code(4, "jobs", "show", "0123456789abcdef")
        self.code(2, "jobs", "show")
        out, err = self.code(5, "install", GOOD)
        self.assertIn("already installed", err)
        self.assertIn("already_installed", err)

    def test_bar_no_wait_jobs_pause_resume_cancel(self):
        self.dl.control(throttle=512 * 1024)
        body = json.loads(self.ok("--no-wait", "--json", "install", SLOWM)[0])
        job = body["job_id"]
        self.assertEqual((body["model_id"], body["kind"]), (SLOWM, "install"), body)
        wait_until(lambda: self.partial_size(SLOWM) > 0, 10 * SLOW, what="bytes")
        out, _ = self.ok("jobs", "--status", "downloading")
        self.assertIn(job, out)
        listed = json.loads(self.ok("--json", "jobs", "--limit", "5")[0])
        self.assertIn(job, [j["job_id"] for j in listed["jobs"]])
        out, _ = self.ok("pause", job)
        self.assertEqual(out.strip(), f"{SLOWM}: job {job} paused")
        self.dl.control(throttle=2 * MiB)
        out, err = self.ok("--progress=bar", "resume", job)
        self.assertIn("\r[", err, "the bar redraws itself")
        self.assertRegex(err, r"\[#+\.*\] ")
        self.assertTrue(err.endswith("\n"), "the bar ends with a newline")
        self.assertEqual(out.strip(), f"{SLOWM} installed")
        self.code(5, "cancel", job)   # finished
        self.code(5, "pause", job)
        self.code(4, "pause", "0123456789abcdef")
        self.code(1, "resume", "not-a-job")  # the server's 400

        self.ok("rm", SLOWM)
        self.dl.control(throttle=256 * 1024)
        job = json.loads(self.ok("--no-wait", "--json", "install", SLOWM)[0])["job_id"]
        self.ok("cancel", job)
        self.assertEqual(self.wait_job(job)["status"], "cancelled")

    def test_failed_job_and_paused_exit_codes(self):
        out, err = self.code(6, "--progress=none", "install", BAD)
        self.assertIn("checksum_mismatch", err)
        self.assertIn("diagnosis corrupt_download", err)
        self.code(4, "install", "no-such-model")
        self.dl.control(throttle=128 * 1024)
        p = subprocess.Popen([self.exe, "--url", self.stack.url(), "--progress=plain",
                              "install", SLOWM], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_until(lambda: self.partial_size(SLOWM) > 0, 10 * SLOW, what="bytes")
            job = self.stack.get("/api/models/jobs?status=downloading").json["jobs"][0]["job_id"]
            self.assertEqual(self.stack.post(f"/api/models/jobs/{job}/pause").status, 200)
            _, err = p.communicate(timeout=20 * SLOW)
            self.assertEqual(p.returncode, 7, err)
            self.assertIn(f"mgctl resume {job}", err.decode())
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.stack.delete(f"/api/models/jobs/{job}")
        self.assertEqual(self.wait_job(job)["status"], "cancelled")

    def test_ls_rm_update_verify_cleanup(self):
        self.ok("--progress=none", "install", SMALL)
        out, _ = self.ok("ls")
        self.assertRegex(out, rf"(?m)^{SMALL} +installed +\S+ \S*B +- +models/llm/{SMALL}.gguf$")
        out, _ = self.ok("--progress=plain", "verify", SMALL)
        self.assertIn("verified", out)
        job = json.loads(self.ok("--json", "jobs", "--limit", "1")[0])["jobs"][0]
        self.assertEqual((job["kind"], job["source_url"]), ("verify", None), job)
        out, _ = self.ok("jobs", "show", job["job_id"])
        self.assertRegex(out, r"(?m)^kind +verify$")
        self.assertNotRegex(out, r"(?m)^source", "no source line while source_url is null")
        size = self.dl.files[f"{SMALL}.gguf"][0]
        with open(self.llm_file(SMALL), "r+b") as f:
            f.seek(size // 3)
            b = f.read(1)
            f.seek(size // 3)
            f.write(bytes([b[0] ^ 0x80]))
        out, err = self.code(6, "verify", SMALL)
        self.assertIn("checksum_mismatch", err)
        self.assertRegex(self.ok("ls")[0], rf"(?m)^{SMALL} +corrupt ")
        self.ok("--progress=none", "update", SMALL)           # a repair
        self.assertRegex(self.ok("ls")[0], rf"(?m)^{SMALL} +installed ")
        _, err = self.code(5, "update", SMALL)
        self.assertIn("up to date", err)
        out, _ = self.ok("update", "--all")
        self.assertIn("every model is up to date", out)
        self.code(4, "update", "not-installed")

        self.stack.write_file("models/.partial/it-cli-left.gguf.part", b"x" * 2000)
        out, _ = self.ok("cleanup", "--dry-run")
        self.assertRegex(out, r"(?m)^partial +2.00 KB +models/.partial/it-cli-left.gguf.part$")
        self.assertIn("would free 2.00 KB in 1 item", out)
        self.assertTrue(os.path.exists(self.stack.path("models/.partial/it-cli-left.gguf.part")))
        done = json.loads(self.ok("--json", "cleanup")[0])
        self.assertEqual([i["path"] for i in done["items"]], ["models/.partial/it-cli-left.gguf.part"])
        self.assertFalse(os.path.exists(self.stack.path("models/.partial/it-cli-left.gguf.part")))
        out, _ = self.ok("rm", SMALL)
        self.assertEqual(out.strip(), f"{SMALL} deleted (its file removed)")
        self.code(4, "rm", SMALL)

    def gallery_status(self):
        return json.loads(self.ok("--json", "gallery", "status")[0])

    def test_gallery_status_signature(self):
        out, _ = self.ok("gallery", "status")
        self.assertRegex(out, r"^mode local\n")
        self.assertRegex(out, r"(?m)^SOURCE +MODELS +SIGNATURE +LAST SUCCESS +FROM$")
        self.assertRegex(out, r"(?m)^default +6 +- +\S+ +\S*config/models_gallery\.json$",
                         "no key: no signature state")
        self.assertIsNone(self.gallery_status()["sources"][0]["signature"])
        self.code(2, "gallery", "status", "extra")
        # a second source with a public key and no signature next to it: missing
        pem = self.stack.path("it-cli-key.pem")
        pub = json.loads(self.ok("--json", "gallery", "keygen", pem)[0])["public_key"]
        with open(self.stack.path("config/models_gallery.json"), "rb") as f:
            self.stack.write_file("config/unsigned.json", f.read())
        server = self.stack.read_json("config/server.json")
        self.stack.write_json("config/server.json", dict(server, galleries=[
            {"name": "main", "path": "config/models_gallery.json"},
            {"name": "unsigned", "path": "config/unsigned.json", "public_key": pub}]))
        try:
            wait_until(lambda: [s["signature"] for s in self.gallery_status()["sources"]]
                       == [None, "missing"], 30 * SLOW, what="the unsigned source checked")
            out, _ = self.ok("gallery", "status")
            self.assertRegex(out, r"^mode remote, serving 6 models")
            self.assertRegex(out, r"(?m)^main +6 +- +\S+ +\S*/config/models_gallery\.json$")
            self.assertRegex(out, r"(?m)^unsigned +0 +missing +- +\S*/config/unsigned\.json$")
            self.assertRegex(out, r"(?m)^unsigned: no signature .*last verified gallery stays$")
        finally:
            self.stack.write_json("config/server.json", server)
            wait_until(lambda: self.gallery_status()["mode"] == "local", 30 * SLOW,
                       what="the local gallery back")

    def test_usage_unreachable_and_token(self):
        _, err = self.code(2)
        self.assertIn("usage: mgctl", err)
        out, _ = self.ok("--help")
        self.assertIn("exit codes:", out)
        self.code(2, "frobnicate")
        self.code(2, "install")
        self.code(2, "install", "a", "b")
        self.code(2, "--progress=fancy", "ls")
        _, err = self.code(3, "ls", url="http://127.0.0.1:9")
        self.assertIn("cannot reach http://127.0.0.1:9", err)
        # the environment names the server and the token
        rc, out, _ = self.mgctl("ls", url="http://127.0.0.1:9", env={"MG_URL": self.stack.url()})
        self.assertEqual(rc, 3, "--url wins over MG_URL")
        p = subprocess.run([self.exe, "ls"], env=dict(os.environ, MG_URL=self.stack.url()),
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        server = self.stack.read_json("config/server.json")
        self.stack.write_json("config/server.json", dict(server, api_token="s3cret-token"))
        try:
            _, err = self.code(8, "cleanup")
            self.assertIn("MG_API_TOKEN", err)
            self.code(8, "cleanup", "--token", "wrong")
            self.ok("cleanup", "--token", "s3cret-token")
            self.ok("cleanup", env={"MG_API_TOKEN": "s3cret-token"})
            self.ok("ls")  # reads need no token
        finally:
            self.stack.write_json("config/server.json", server)


if __name__ == "__main__":
    mgtest.main()
