#!/usr/bin/env python3
"""test_signed_gallery.py - signed galleries (Ed25519) through the real stack: keys and
signatures made by the real `mgctl gallery keygen` / `mgctl gallery sign`, galleries served
by a real HTTP server (the CDN of test_cdn.py) and from a path.

- a gallery with a valid signature is used (status "signature": "valid");
- a new version with a signature by another key ("invalid"), with no signature ("missing"),
  or whose bytes changed after signing ("invalid"), is not used: the last verified gallery
  stays and the status says why; the correctly signed version is then taken;
- a path source with its own signature_url, and a key set on gallery_url
  (gallery_public_key); a gallery served before a key was configured is never served as
  verified once a key is set (its signature must verify first);
- mgctl gallery sign writes FILE.sig and prints the public key; bad usage exits 2."""

import json
import os
import shutil
import subprocess
import tempfile

import mgtest
from mgtest import Stack
from test_cdn import LOCAL, CdnServer, CdnTestCase, gallery, model


class Keys:
    """Keys and signatures made with the real mgctl in a temp directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mg-it-keys-")
        self.exe = os.path.join(mgtest.bin_dir(), "mgctl")

    def run(self, *args):
        p = subprocess.run([self.exe, *args], capture_output=True, text=True, timeout=30)
        return p.returncode, p.stdout, p.stderr

    def keygen(self, name):
        pem = os.path.join(self.dir, name + ".pem")
        rc, out, err = self.run("--json", "gallery", "keygen", pem)
        assert rc == 0, err
        return pem, json.loads(out)["public_key"]

    def sign(self, pem, body):
        """The signature file's bytes for `body` (bytes)."""
        path = os.path.join(self.dir, "doc.json")
        with open(path, "wb") as f:
            f.write(body)
        rc, out, err = self.run("gallery", "sign", "--key", pem, path)
        assert rc == 0, err
        with open(path + ".sig", "rb") as f:
            return f.read()

    def stop(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def body_of(doc):
    return json.dumps(doc, indent=1).encode()


V1 = gallery(model("signed-a"), model("signed-b"), version="1")
V2 = gallery(model("signed-a"), model("signed-c"), version="2")


class SignedGalleryTest(CdnTestCase):
    @classmethod
    def setUpClass(cls):
        cls.keys = Keys()
        cls.addClassCleanup(cls.keys.stop)
        cls.pem, cls.pub = cls.keys.keygen("main")
        cls.other_pem, cls.other_pub = cls.keys.keygen("other")

    def publish(self, cdn, doc, etag, pem=None, sig=None, tamper=False):
        body = body_of(doc)
        cdn.publish("/g.json", body, etag)
        if sig is None and pem:
            sig = self.keys.sign(pem, body)
        if tamper:
            cdn.publish("/g.json", body.replace(b'"version": "2"', b'"version": "3"'), etag)
        if sig is not None:
            cdn.publish("/g.json.sig", sig, etag + "-sig")
        else:
            with cdn.lock:
                cdn.docs.pop("/g.json.sig", None)

    def test_cdn_gallery_signature_valid_invalid_missing(self):
        cdn = CdnServer().start()
        self.addCleanup(cdn.stop)
        self.publish(cdn, V1, '"v1"', pem=self.pem)
        s = self.cdn_stack(cdn, {"gallery_public_key": self.pub})
        self.addCleanup(s.stop)
        self.wait_ids(s, ["signed-a", "signed-b"])
        src = self.source(self.refresh(s))
        self.assertEqual(src["signature"], "valid", src)
        self.assertIsNone(src["error"], src)

        cases = [("invalid", dict(pem=self.other_pem)), ("missing", dict()),
                 ("invalid", dict(pem=self.pem, tamper=True)),
                 ("invalid", dict(sig=b"not base64 at all\n"))]
        for n, (verdict, how) in enumerate(cases):
            with self.subTest(verdict=verdict, how=sorted(how)):
                self.publish(cdn, V2, f'"v2-{n}"', **how)
                src = self.source(self.refresh(s))
                self.assertEqual(src["signature"], verdict, src)
                self.assertIn("signature", src["error"], src)
                self.assertIn("last verified gallery stays", src["error"], src)
                self.assertEqual(self.ids(s), ["signed-a", "signed-b"], "v1 stays")
                self.assertEqual(src["model_count"], 2, src)
        self.publish(cdn, V2, '"v2-good"', pem=self.pem)
        src = self.source(self.refresh(s))
        self.assertEqual(src["signature"], "valid", src)
        self.assertIsNone(src["error"], src)
        self.assertEqual(self.ids(s), ["signed-a", "signed-c"])
        # an unchanged gallery (304) stays verified
        src = self.source(self.refresh(s))
        self.assertEqual((src["signature"], src["http_status"]), ("valid", 304), src)

    def test_path_source_and_key_set_later(self):
        cdn = CdnServer().start()
        self.addCleanup(cdn.stop)
        self.publish(cdn, V1, '"v1"')  # no signature yet
        s = Stack(gallery=LOCAL, server={"allow_http": True, "galleries": [
            {"name": "cdn", "url": cdn.url("/g.json")}]})
        self.addCleanup(s.stop)
        self.wait_ids(s, ["signed-a", "signed-b"])
        self.assertIsNone(self.source(self.refresh(s), "cdn")["signature"])
        lab = gallery(model("lab-x"), version="lab")
        s.write_file("config/lab.json", body_of(lab))
        s.write_file("config/sigs/lab.sig", self.keys.sign(self.pem, body_of(lab)))
        # the key is set: the stored unsigned copy is not served as verified; the CDN's
        # document has no signature, so the cdn source has no gallery any more
        s.write_json("config/server.json", {"allow_http": True, "galleries": [
            {"name": "cdn", "url": cdn.url("/g.json"), "public_key": self.pub},
            {"name": "lab", "path": "config/lab.json", "public_key": self.pub,
             "signature_url": "config/sigs/lab.sig"}]})
        self.wait_ids(s, ["lab-x"])
        st = self.refresh(s)
        self.assertEqual(self.source(st, "cdn")["signature"], "missing", st)
        self.assertEqual(self.source(st, "lab")["signature"], "valid", st)
        self.publish(cdn, V1, '"v1-signed"', pem=self.pem)
        st = self.refresh(s)
        self.assertEqual(self.source(st, "cdn")["signature"], "valid", st)
        self.assertEqual(self.ids(s), ["signed-a", "signed-b", "lab-x"])
        # the lab file changes without a new signature: the verified one stays
        s.write_file("config/lab.json", body_of(gallery(model("lab-y"), version="lab2")))
        st = self.refresh(s)
        self.assertEqual(self.source(st, "lab")["signature"], "invalid", st)
        self.assertEqual(self.ids(s), ["signed-a", "signed-b", "lab-x"])

    def test_bad_public_key_is_a_source_error(self):
        s = Stack(gallery=LOCAL, server={"allow_http": True, "galleries": [
            {"name": "bad", "url": "http://127.0.0.1:1/g.json", "public_key": "abc"}]})
        self.addCleanup(s.stop)
        src = self.source(self.status(s), "bad")
        self.assertIn("public_key must be base64", src["error"], src)

    def test_mgctl_sign_usage(self):
        self.assertEqual(self.keys.run("gallery", "sign", "somefile")[0], 2)
        self.assertEqual(self.keys.run("gallery", "nope")[0], 2)
        rc, _, err = self.keys.run("gallery", "sign", "--key", "/nonexistent.pem", "/etc/hostname")
        self.assertEqual(rc, 1)
        self.assertIn("/nonexistent.pem", err)
        pem = os.path.join(self.keys.dir, "x.pem")
        rc, out, _ = self.keys.run("gallery", "keygen", pem)
        self.assertEqual(rc, 0)
        self.assertIn("public_key: ", out)
        self.assertEqual(self.keys.run("gallery", "keygen", pem)[0], 1, "never overwritten")


if __name__ == "__main__":
    mgtest.main()
