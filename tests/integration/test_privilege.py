#!/usr/bin/env python3
"""test_privilege.py - least privilege. deploy/up run as root (as the tests are): no process
of the stack but nginx's master and runit (runsvdir, runsv) runs as root, the others as the
service user with no capabilities; the sockets under run/ are not world-writable, and only
root and the service user's group may connect to them (the installer publishes progress);
the service user owns what the stack writes (config/, cache/, models/, jobs/), run/ is
root's with the group allowed in (sticky), nginx's pid file and the logs stay root's, and a
mkdtemp root (0700) is reachable by the group. Run as another user, everything runs as that
user, with the same socket modes."""

import grp
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import time
import unittest

import mgtest
from mgtest import REPO, Stack, StackTestCase, free_port, proc_comm, wait_until

USER = "model-gallery"
ROOT_OK = {"nginx", "runsvdir", "runsv"}  # nginx: the master only (checked below)


def ids(pid):
    """({real, effective, saved, fs uid}, {gids}, CapEff) of pid, from /proc/pid/status."""
    uids, gids, cap = set(), set(), None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key == "Uid":
                uids = {int(v) for v in value.split()}
            elif key == "Gid":
                gids = {int(v) for v in value.split()}
            elif key == "CapEff":
                cap = int(value, 16)
    return uids, gids, cap


def connect_as(user, path):
    """Connects to unix socket `path` as `user` (runit's chpst); None, or the error text."""
    code = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
            "try:\n s.connect(sys.argv[1])\nexcept OSError as e:\n print(e.strerror); sys.exit(1)")
    p = subprocess.run(["chpst", "-u", user, "python3", "-c", code, path],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
    return None if p.returncode == 0 else p.stdout.decode().strip()


@unittest.skipUnless(os.geteuid() == 0, "deploy/up runs as root here only when the tests do")
class AsRootTest(StackTestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(gallery="gallery_it.json")
        cls.addClassCleanup(cls.stack.stop)
        cls.user = pwd.getpwnam(USER)

    def settled(self):
        """The stack's processes once the run scripts and their helpers are done: (pid,
        comm) of everything working in run/sv and of nginx's session."""
        s = self.stack

        def only_services():
            procs = [(p, proc_comm(p)) for p in set(s.sv_pids()) |
                     set(mgtest.session_members({s.pid("nginx")}))]
            return procs if all(c in ROOT_OK | {"mg-fcgi", "mg-installer"}
                                for _, c in procs) else None
        return wait_until(only_services, 5, what="the run scripts to finish")

    def test_process_owners(self):
        s = self.stack
        uid, gid = self.user.pw_uid, self.user.pw_gid
        procs = self.settled()
        comms = [c for _, c in procs]
        for name, n in (("runsvdir", 1), ("runsv", 3), ("mg-installer", 1)):
            self.assertEqual(comms.count(name), n, procs)
        self.assertGreaterEqual(comms.count("mg-fcgi"), 2, procs)
        self.assertGreaterEqual(comms.count("nginx"), 2, procs)
        master = s.pid("nginx")
        for pid, comm in procs:
            uids, gids, cap = ids(pid)
            if comm in ("runsvdir", "runsv") or pid == master:
                self.assertEqual(uids, {0}, f"{comm} {pid}")
                continue
            self.assertEqual(uids, {uid}, f"{comm} {pid} runs as {uids}")
            self.assertEqual(gids, {gid}, f"{comm} {pid} has groups {gids}")
            self.assertEqual(cap, 0, f"{comm} {pid} keeps capabilities {cap:x}")
        # health reports the same owners
        body = self.assertJsonAnswer(s.get("/api/models/health"), 200)["processes"]
        self.assertEqual(body["nginx"]["user"], "root")
        self.assertEqual({w["user"] for w in body["nginx"]["workers"]}, {USER})
        self.assertEqual(body["fcgi"]["user"], USER)
        self.assertEqual({w["user"] for w in body["fcgi"]["workers"]}, {USER})
        self.assertEqual(body["installer"]["user"], USER)
        self.assertEqual(body["supervisor"]["user"], "root")

    def test_sockets(self):
        s = self.stack
        group = grp.getgrgid(self.user.pw_gid).gr_name
        socks = sorted(n for n in os.listdir(s.path("run"))
                       if stat.S_ISSOCK(os.lstat(s.path("run", n)).st_mode))
        self.assertEqual(socks, ["fcgi-bulk.sock", "fcgi.sock", "nchan.sock"])
        for name, owner in (("fcgi.sock", USER), ("fcgi-bulk.sock", USER), ("nchan.sock", "root")):
            st = os.lstat(s.path("run", name))
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o660, name)
            self.assertEqual(pwd.getpwuid(st.st_uid).pw_name, owner, name)
            self.assertEqual(grp.getgrgid(st.st_gid).gr_name, group, name)
            self.assertIsNone(connect_as(USER, s.path("run", name)), name)
            self.assertIn("Permission denied", connect_as("nobody", s.path("run", name)), name)
        # the installer, as the service user, publishes: a message reaches a subscriber
        self.assertIn(s.publish({"model_id": "x", "job_id": "0" * 16, "status": "queued"}),
                      (201, 202))

    def test_ownership(self):
        s = self.stack
        uid, gid = self.user.pw_uid, self.user.pw_gid
        for d in ("config", "cache", "models", "models/llm", "models/.partial", "jobs"):
            st = os.lstat(s.path(d))
            self.assertEqual((st.st_uid, st.st_gid), (uid, gid), d)
        for f in ("cache/gallery_cache.json", "run/fcgi.pid", "run/installer.pid"):
            self.assertEqual(os.lstat(s.path(f)).st_uid, uid, f)
        run = os.lstat(s.path("run"))
        self.assertEqual((run.st_uid, run.st_gid), (0, gid))
        self.assertEqual(stat.S_IMODE(run.st_mode), 0o1770)
        for f in ("run/nginx.pid", "run/nginx.conf", "run/nginx-error.log", "run/fcgi.log",
                  "run/installer.log", "run/supervisor.log", "run/sv", "run/tmp"):
            st = os.lstat(s.path(f))
            self.assertEqual(st.st_uid, 0, f)
            self.assertFalse(st.st_mode & (stat.S_IWGRP | stat.S_IWOTH), f)
        # mkdtemp made the root 0700 root:root; the group may now pass, others still not
        top = os.lstat(s.root)
        self.assertEqual((top.st_uid, top.st_gid), (0, gid))
        self.assertEqual(stat.S_IMODE(top.st_mode), 0o710)

    def test_registry_written_as_the_user(self):
        s = self.stack
        r = s.delete("/api/models/no-such-model")
        self.assertError(r, 404, "not_found", "id", "no-such-model")
        # a registry the test wrote as root is replaced by one of the user's
        s.write_json("config/models.json", {"models": {}})
        os.makedirs(s.path("models", "llm"), exist_ok=True)
        s.write_file("models/llm/stray.gguf", b"x")
        r = s.delete("/api/models/stray")
        self.assertEqual(self.assertJsonAnswer(r, 200), {"deleted": "stray", "file_removed": True})
        self.assertFalse(os.path.exists(s.path("models", "llm", "stray.gguf")))


class AsUserTest(StackTestCase):
    """deploy/up run by an unprivileged user: every process runs as that user."""

    @unittest.skipUnless(os.geteuid() == 0, "needs root to become another user")
    def test_unprivileged_deploy(self):
        nobody = pwd.getpwnam("nobody")
        tmp = tempfile.mkdtemp(prefix="mg-it-user-")
        root = os.path.join(tmp, "root")
        port = free_port()
        os.makedirs(os.path.join(root, "config"))
        shutil.copy(os.path.join(mgtest.DATA, "gallery_it.json"),
                    os.path.join(root, "config", "models_gallery.json"))
        os.chmod(tmp, 0o711)
        subprocess.run(["chown", "-R", "nobody:nogroup", root], check=True)
        env = dict(os.environ, MG_ROOT=root, MG_PORT=str(port), MG_BIN_DIR=mgtest.bin_dir(),
                   HOME="/nonexistent")

        def deploy(script):
            return subprocess.run(["chpst", "-u", "nobody:nogroup",
                                   os.path.join(REPO, "deploy", script)], env=env,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, timeout=60)
        try:
            p = deploy("up")
            out = p.stdout.decode(errors="replace")
            self.assertEqual(p.returncode, 0, out)
            self.assertIn(f"http://127.0.0.1:{port}/", out)
            sv = os.path.join(root, "run", "sv")
            procs = wait_until(lambda: (lambda ps: ps if ps and all(
                proc_comm(x) in ("runsvdir", "runsv", "nginx", "mg-fcgi", "mg-installer")
                for x in ps) else None)(mgtest.cwd_members(sv)), 5, what="settled processes")
            self.assertGreaterEqual(len(procs), 9, procs)
            for pid in procs:
                self.assertEqual(ids(pid)[0], {nobody.pw_uid}, f"{proc_comm(pid)} {pid}")
            for name in ("fcgi.sock", "fcgi-bulk.sock", "nchan.sock"):
                st = os.lstat(os.path.join(root, "run", name))
                self.assertEqual(stat.S_IMODE(st.st_mode), 0o660, name)
                self.assertEqual(st.st_uid, nobody.pw_uid, name)
            health = mgtest.request(port, "GET", "/api/models/health")
            self.assertEqual(health.json["installer"], "running", health.json)
        finally:
            p = deploy("down")
            left = mgtest.cwd_members(os.path.join(root, "run", "sv"))
            shutil.rmtree(tmp, ignore_errors=True)
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertEqual(left, [])


if __name__ == "__main__":
    mgtest.main()
