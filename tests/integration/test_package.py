#!/usr/bin/env python3
"""test_package.py - the Debian package. A fresh CMake build with -DMG_PACKAGE=ON and
`cpack -G DEB` give model-gallery_*.deb; it holds the binaries, the web UI, the seed
gallery, the systemd units (restart, the unprivileged user, hardening) with nginx's drop-in,
the nginx site, /etc/model-gallery/server.json and the data root, with maintainer scripts
that create the user; `systemd-analyze verify` passes on the units and `systemd-analyze
security` rates them OK; the binaries find the data root and the seed gallery at the
installed paths; the site passes `nginx -t` with Debian's nchan module and serves the API,
the gallery, the web UI and the progress publisher under a scratch prefix. (Built once, in
the normal build's run only.)"""

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import mgtest
from mgtest import DATA, REPO, StackTestCase, UnixHTTPConnection, free_port, request, wait_until

ROOT = "/var/lib/model-gallery"
SHARE = "/usr/share/model-gallery"
UNITS = "/usr/lib/systemd/system"


def run(args, **kw):
    p = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=kw.pop("timeout", 300), **kw)
    out = p.stdout.decode(errors="replace")
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {p.returncode}:\n{out[-3000:]}")
    return out


def stop_pid(proc):
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)


@unittest.skipIf(os.environ.get("MG_SANITIZE", "").upper() in ("ON", "1", "TRUE"),
                 "the package is built and checked in the normal build's run")
class PackageTest(StackTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="mg-pkg-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        build = os.path.join(cls.tmp, "build")
        run(["cmake", "-S", REPO, "-B", build, "-DMG_PACKAGE=ON",
             "-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON"])
        run(["cmake", "--build", build, "-j2", "--target", "mg-fcgi", "mg-installer", "mgctl",
             "mg_nginx_site"])
        run(["cpack", "-G", "DEB"], cwd=build)
        debs = glob.glob(os.path.join(build, "model-gallery_*.deb"))
        assert len(debs) == 1, debs
        cls.deb = debs[0]
        cls.tree = os.path.join(cls.tmp, "tree")
        run(["dpkg-deb", "-x", cls.deb, cls.tree])

    def path(self, p):
        return os.path.join(self.tree, p.lstrip("/"))

    def test_contents(self):
        listing = run(["dpkg-deb", "-c", self.deb])
        entries = {}
        for line in listing.splitlines():
            f = line.split()
            entries[f[-1].lstrip(".").rstrip("/") or "/"] = (f[0], f[1])
        for p in ("/usr/sbin/mg-fcgi", "/usr/sbin/mg-installer", "/usr/bin/mgctl",
                  "/usr/libexec/model-gallery/mg-prepare-root",
                  "/usr/libexec/model-gallery/mg-socket-mode"):
            self.assertIn(p, entries)
            self.assertEqual(entries[p], ("-rwxr-xr-x", "root/root"), p)
        for p in (f"{SHARE}/web/index.html", f"{SHARE}/web/js/app.js",
                  f"{SHARE}/config/models_gallery.json", f"{UNITS}/mg-fcgi.service",
                  f"{UNITS}/mg-installer.service", f"{UNITS}/nginx.service.d/model-gallery.conf",
                  "/etc/nginx/sites-available/model-gallery", "/etc/model-gallery/server.json",
                  "/usr/share/doc/model-gallery/README.deploy.md"):
            self.assertIn(p, entries)
            self.assertEqual(entries[p], ("-rw-r--r--", "root/root"), p)
        self.assertIn(ROOT, entries)
        self.assertTrue(entries[ROOT][0].startswith("d"))
        # every file of web/ is there
        for base, _, files in os.walk(os.path.join(REPO, "web")):
            for f in files:
                rel = os.path.relpath(os.path.join(base, f), os.path.join(REPO, "web"))
                self.assertIn(f"{SHARE}/web/{rel}", entries)
        with open(self.path("/etc/model-gallery/server.json")) as f:
            self.assertEqual(json.load(f)["allow_http"], False)
        # the client runs from the package and names the site's default address
        out = run([self.path("/usr/bin/mgctl"), "--help"])
        self.assertIn("http://127.0.0.1:8080", out)
        self.assertIn("exit codes:", out)

    def test_control(self):
        info = run(["dpkg-deb", "-I", self.deb])
        depends = re.search(r"^ Depends: (.*)$", info, re.M).group(1)
        for dep in ("nginx", "libnginx-mod-nchan", "adduser", "libfcgi0ldbl", "libjansson4",
                    "libcurl4", "libssl3"):
            self.assertRegex(depends, rf"(^|, ){dep}\b", depends)
        ctl = os.path.join(self.tmp, "control")
        run(["dpkg-deb", "-e", self.deb, ctl])
        with open(os.path.join(ctl, "conffiles")) as f:
            self.assertEqual(f.read().split(), ["/etc/model-gallery/server.json",
                                                "/etc/nginx/sites-available/model-gallery"])
        with open(os.path.join(ctl, "postinst")) as f:
            postinst = f.read()
        self.assertIn("adduser --system --group", postinst)
        self.assertIn("/usr/libexec/model-gallery/mg-prepare-root /var/lib/model-gallery",
                      postinst.replace('"$ROOT"', ROOT))
        for script in ("postinst", "prerm", "postrm"):
            self.assertTrue(os.access(os.path.join(ctl, script), os.X_OK), script)
            run(["sh", "-n", os.path.join(ctl, script)])

    def test_units(self):
        for unit in ("mg-fcgi.service", "mg-installer.service"):
            with open(self.path(f"{UNITS}/{unit}")) as f:
                text = f.read()
            for line in ("User=model-gallery", "Restart=always", "NoNewPrivileges=yes",
                         "ProtectSystem=strict", f"ReadWritePaths={ROOT}", "PrivateTmp=yes",
                         "CapabilityBoundingSet=", f"--root {ROOT}"):
                self.assertIn(line, text, unit)
        # systemd-analyze needs the units they depend on: the host's, beside the package's
        shutil.copytree("/lib/systemd/system", self.path(UNITS), dirs_exist_ok=True,
                        symlinks=True, ignore=shutil.ignore_patterns("mg-*", "nginx.service.d"))
        if os.path.exists("/usr/sbin/nginx"):
            shutil.copy("/usr/sbin/nginx", self.path("/usr/sbin/nginx"))
        units = [f"{UNITS}/mg-fcgi.service", f"{UNITS}/mg-installer.service"]
        out = run(["systemd-analyze", "verify", f"--root={self.tree}"] + units +
                  (["nginx.service"] if os.path.exists("/usr/sbin/nginx") else []))
        self.assertEqual(out.strip(), "", out)
        for unit in units:
            out = run(["systemd-analyze", "security", "--offline=yes", f"--root={self.tree}",
                       "--no-pager", unit])
            level = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", out)
            self.assertIsNotNone(level, out[-500:])
            print(f"{os.path.basename(unit)}: exposure {level.group(1)} {level.group(2)}")
            self.assertLessEqual(float(level.group(1)), 2.0, out[-2000:])
        with open(self.path(f"{UNITS}/nginx.service.d/model-gallery.conf")) as f:
            self.assertIn("ExecStartPost=-/usr/libexec/model-gallery/mg-socket-mode "
                          f"{ROOT}/run/nchan.sock model-gallery", f.read())

    def test_installed_paths(self):
        """Without --root, the package's mg-fcgi uses /var/lib/model-gallery and seeds its
        gallery from /usr/share/model-gallery: run in a mount namespace where those are
        scratch directories."""
        scratch = os.path.join(self.tmp, "varlib")
        os.makedirs(scratch, exist_ok=True)
        script = (f"mount --bind {scratch} /var/lib && mount --bind {self.path('/usr/share')} "
                  f"/usr/share && exec timeout -s TERM 3 {self.path('/usr/sbin/mg-fcgi')} "
                  "--workers 1")
        p = subprocess.run(["unshare", "--mount", "sh", "-c", script],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        out = p.stdout.decode(errors="replace")
        if "unshare failed" in out or "mount:" in out:
            self.skipTest(f"no private mount namespace here: {out}")
        self.assertIn(f"seeded {ROOT}/config/models_gallery.json from "
                      f"{SHARE}/config/models_gallery.json", out)
        self.assertIn(f"data root {ROOT}", out)
        self.assertTrue(os.path.isfile(os.path.join(scratch, "model-gallery", "cache",
                                                    "gallery_cache.json")), out)

    def test_site_serves_the_api(self):
        """The site under a scratch prefix (paths and port replaced), included in Debian's way
        (modules-enabled for nchan), with the package's mg-fcgi behind it."""
        scratch = os.path.join(self.tmp, "site")
        root = os.path.join(scratch, "root")
        os.makedirs(os.path.join(root, "config"))
        os.makedirs(os.path.join(scratch, "tmp"))
        shutil.copy(os.path.join(DATA, "gallery_it.json"),
                    os.path.join(root, "config", "models_gallery.json"))
        port = free_port()
        with open(self.path("/etc/nginx/sites-available/model-gallery")) as f:
            site = f.read()
        self.assertIn("listen 127.0.0.1:8080;", site)
        self.assertNotIn("load_module", site)
        site = (site.replace(ROOT, root).replace(f"{SHARE}/web", self.path(f"{SHARE}/web"))
                .replace(":8080", f":{port}").replace(" 8080;", f" {port};"))
        self.assertIn(f"listen 127.0.0.1:{port};", site)
        self.assertNotIn("8080", site)
        with open(os.path.join(scratch, "model-gallery"), "w") as f:
            f.write(site)
        conf = os.path.join(scratch, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""# test_package.py: Debian's nginx.conf in short, with the site included
include /etc/nginx/modules-enabled/*.conf;
user root root;
worker_processes 1;
daemon off;
pid {root}/run/nginx.pid;
error_log {scratch}/error.log warn;
events {{ worker_connections 64; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    client_body_temp_path {scratch}/tmp/body;
    proxy_temp_path {scratch}/tmp/proxy;
    fastcgi_temp_path {scratch}/tmp/fastcgi;
    uwsgi_temp_path {scratch}/tmp/uwsgi;
    scgi_temp_path {scratch}/tmp/scgi;
    include {scratch}/model-gallery;
}}
""")
        fcgi = subprocess.Popen([self.path("/usr/sbin/mg-fcgi"), "--root", root, "--workers", "1"],
                                env=dict(os.environ, MG_NGINX_PID=f"{root}/run/nginx.pid"),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=open(os.path.join(scratch, "fcgi.log"), "w"))
        self.addCleanup(stop_pid, fcgi)
        wait_until(lambda: os.path.exists(os.path.join(root, "run", "fcgi.sock")), 10,
                   what="mg-fcgi's socket")
        nginx_cmd = ["nginx", "-e", os.path.join(scratch, "error.log"), "-c", conf]
        run(nginx_cmd + ["-t", "-q"])
        nginx = subprocess.Popen(nginx_cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.STDOUT)
        self.addCleanup(stop_pid, nginx)
        try:
            health = wait_until(lambda: (lambda r: r if r.status == 200 else None)(
                request(port, "GET", "/api/models/health", timeout=2)), 10, what="health")
        except AssertionError as e:
            logs = ""
            logs = subprocess.run(["ss", "-ltnp"], stdout=subprocess.PIPE).stdout.decode()
            for name in ("error.log", "fcgi.log"):
                with open(os.path.join(scratch, name), errors="replace") as f:
                    logs += f"--- {name} ---\n{f.read()[-3000:]}\n"
            raise AssertionError(f"{e}\n{logs}") from None
        body = self.assertJsonAnswer(health, 200)
        self.assertEqual(body["status"], "ok")
        self.assertEqual(body["gallery_models"], 15)
        self.assertEqual(body["processes"]["fcgi"]["pid"], fcgi.pid)
        self.assertEqual(body["processes"]["nginx"]["pid"], nginx.pid)
        self.assertEqual(len(body["processes"]["nginx"]["workers"]), 1)
        r = request(port, "GET", "/api/models/gallery")
        self.assertEqual(len(self.assertJsonAnswer(r, 200)["models"]), 15)
        r = request(port, "GET", "/api/models/gallery/search?query=qwen")
        self.assertGreater(self.assertJsonAnswer(r, 200)["total"], 0)
        r = request(port, "GET", "/")
        self.assertEqual(r.status, 200)
        self.assertIn(b"<html", r.body.lower())
        self.assertError(request(port, "GET", "/api/models/nope/nope"), 404, "not_found", None)
        conn = UnixHTTPConnection(os.path.join(root, "run", "nchan.sock"))
        try:
            conn.request("POST", "/pub/progress", b'{"model_id": "x"}',
                         {"Content-Type": "application/json"})
            self.assertIn(conn.getresponse().status, (201, 202))
        finally:
            conn.close()


if __name__ == "__main__":
    mgtest.main()
