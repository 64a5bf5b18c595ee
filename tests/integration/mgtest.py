"""mgtest.py - the shared harness of the integration tests (stdlib only).

A Stack is one whole Model Gallery deployment (nginx + nchan, mg-fcgi, mg-installer) started
by the real deploy/up in a fresh temporary data root on a free 127.0.0.1 port, and stopped by
deploy/down, after which the harness checks by pid that nothing it started is left.

    with Stack(gallery="gallery_it.json") as s:
        r = s.get("/api/models/gallery/search?query=qwen")
        assert r.status == 200 and r.json["total"] == 3

Environment: MG_BIN_DIR (the CMake build with mg-fcgi and mg-installer, set by ctest),
MG_SRC_DIR (the repository; default: two levels up), MG_KEEP_ROOT=1 keeps temp roots.
"""

import atexit
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.environ.get("MG_SRC_DIR") or os.path.join(HERE, "..", ".."))
DATA = os.path.join(REPO, "tests", "data")
sys.path.insert(0, HERE)


def bin_dir():
    """The build directory whose binaries the tests run."""
    d = os.environ.get("MG_BIN_DIR")
    if d:
        return os.path.abspath(d)
    for cand in ("build", "build-deploy"):
        p = os.path.join(REPO, cand)
        if os.path.exists(os.path.join(p, "mg-fcgi")):
            return p
    raise RuntimeError("MG_BIN_DIR is not set and no build with mg-fcgi was found")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(fn, timeout=5.0, interval=0.05, what="condition"):
    """Calls fn() until it returns a truthy value (returned) or `timeout` passes (raises)."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = fn()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - reported below when time runs out
            last_exc = e
        if time.monotonic() >= deadline:
            msg = f"timed out after {timeout} s waiting for {what}"
            if last_exc:
                msg += f" (last error: {last_exc!r})"
            raise AssertionError(msg)
        time.sleep(interval)


# --- processes ---------------------------------------------------------------------------

def proc_stat(pid):
    """(state, ppid, pgrp, session) of pid, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rindex(")") + 2:].split()
    return rest[0], int(rest[1]), int(rest[2]), int(rest[3])


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def proc_comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def cwd_members(directory):
    """Every live pid whose working directory is `directory` or below."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{name}/cwd")
        except OSError:
            continue
        if (cwd == directory or cwd.startswith(directory + "/")) and alive(int(name)):
            out.append(int(name))
    return out


def session_members(sids):
    """Every live pid whose session id is in `sids` (the daemons all run setsid)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = proc_stat(int(name))
        if st and st[3] in sids and st[0] not in ("Z", "X"):
            out.append(int(name))
    return out


# --- HTTP --------------------------------------------------------------------------------

class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # lower-case name -> value (last one wins)
        self.body = body
        self._json = None

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    @property
    def json(self):
        if self._json is None:
            try:
                self._json = json.loads(self.body)
            except ValueError as e:
                raise AssertionError(f"answer {self.status} is not JSON: {e}: {self.body[:300]!r}")
        return self._json

    def __repr__(self):
        return f"<Response {self.status} {self.body[:200]!r}>"


def request(port, method, path, body=None, headers=None, timeout=15.0):
    """One HTTP/1.1 request to 127.0.0.1:port with http.client; `path` is sent as is."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        skip_host = any(k.lower() == "host" for k in hdrs)
        conn.putrequest(method, path, skip_host=skip_host, skip_accept_encoding=True)
        for k, v in hdrs.items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        elif method in ("POST", "PUT"):
            conn.putheader("Content-Length", "0")
        conn.endheaders(body)
        r = conn.getresponse()
        data = r.read()
        hdr = {k.lower(): v for k, v in r.getheaders()}
        return Response(r.status, r.reason, hdr, data)
    finally:
        conn.close()


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix socket (the nchan publisher socket run/nchan.sock)."""

    def __init__(self, path, timeout=10.0):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def qs(params):
    """A query string from a dict or a list of pairs (values str()-ed, percent-encoded)."""
    items = params.items() if isinstance(params, dict) else params
    return urllib.parse.urlencode([(k, str(v)) for k, v in items], quote_via=urllib.parse.quote)


# --- the stack ---------------------------------------------------------------------------

_live_stacks = []


@atexit.register
def _stop_all():
    for s in list(_live_stacks):
        try:
            s.stop()
        except Exception as e:  # noqa: BLE001
            print(f"mgtest: cleanup of {s.root} failed: {e}", file=sys.stderr)


class Stack:
    """One deployment in a temp root. `gallery`: a file name in tests/data, a path, a dict
    (written as JSON), a str of raw text, or None (the root's seed applies). `server`: a dict
    for config/server.json. `registry`: a dict for config/models.json."""

    def __init__(self, gallery="gallery_it.json", server=None, registry=None, port=None,
                 env=None, start=True):
        self.root = tempfile.mkdtemp(prefix="mg-it-")
        self.port = port or free_port()
        self.bin_dir = bin_dir()
        self.extra_env = dict(env or {})
        self.started_pids = set()
        self.up_output = ""
        os.makedirs(self.path("config"), exist_ok=True)
        if gallery is not None:
            self.write_gallery(gallery)
        if server is not None:
            self.write_json("config/server.json", server)
        if registry is not None:
            self.write_json("config/models.json", registry)
        _live_stacks.append(self)
        if start:
            self.start()

    # --- files of the root ---

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def write_file(self, rel, data):
        """Writes bytes/str atomically (temp + rename) at root/rel."""
        p = self.path(rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if isinstance(data, str):
            data = data.encode()
        tmp = p + ".mgtest.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, p)
        return p

    def write_json(self, rel, obj):
        return self.write_file(rel, json.dumps(obj, indent=1) + "\n")

    def read_json(self, rel):
        with open(self.path(rel)) as f:
            return json.load(f)

    def write_gallery(self, gallery):
        if isinstance(gallery, dict):
            return self.write_json("config/models_gallery.json", gallery)
        if isinstance(gallery, str) and (os.sep in gallery or gallery.endswith(".json")) \
                and not gallery.lstrip().startswith(("{", "[")):
            src = gallery if os.path.isabs(gallery) else os.path.join(DATA, gallery)
            with open(src, "rb") as f:
                return self.write_file("config/models_gallery.json", f.read())
        return self.write_file("config/models_gallery.json", gallery)

    def log(self, name):
        """Text of run/<name>.log ('' when absent)."""
        try:
            with open(self.path("run", f"{name}.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def logs(self):
        return self.log("fcgi") + self.log("installer")

    def pid(self, name):
        try:
            with open(self.path("run", f"{name}.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    # --- lifecycle ---

    def _env(self):
        env = dict(os.environ)
        env.update({"MG_ROOT": self.root, "MG_PORT": str(self.port), "MG_BIN_DIR": self.bin_dir})
        env.update(self.extra_env)
        return env

    def run_script(self, name, timeout=90, check=True):
        p = subprocess.run([os.path.join(REPO, "deploy", name)], env=self._env(),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout)
        out = p.stdout.decode(errors="replace")
        if check and p.returncode != 0:
            raise AssertionError(f"deploy/{name} exited {p.returncode}:\n{out}\n{self.diagnostics()}")
        return p.returncode, out

    def start(self):
        rc, self.up_output = self.run_script("up")
        self.record_pids()
        return self.up_output

    def record_pids(self):
        """Remembers every process of this stack: the sessions of the supervisor (runsvdir,
        started by deploy/up in its own session, with every runsv and the daemons) and of
        nginx (runit starts it in a session of its own), and whatever works in run/sv."""
        sids = {p for p in (self.pid("supervisor"), self.pid("nginx"), self.pid("fcgi"),
                            self.pid("installer")) if p}
        self.started_pids |= sids
        self.started_pids |= set(session_members(sids))
        self.started_pids |= set(self.sv_pids())
        return self.started_pids

    def sv_pids(self):
        """Every live process whose working directory is this root's run/sv or below: what
        runit runs for the root, orphans of killed processes included."""
        return cwd_members(self.path("run", "sv"))

    def sv(self, command, service, timeout=15):
        """runit's sv COMMAND (up, down, status, ...) on run/sv/SERVICE; returns its output."""
        p = subprocess.run(["sv", "-w", str(timeout), command, self.path("run", "sv", service)],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout + 5)
        out = p.stdout.decode(errors="replace")
        if p.returncode != 0:
            raise AssertionError(f"sv {command} {service} exited {p.returncode}: {out}")
        return out

    def stop(self):
        """deploy/down, then checks that no process this stack started is left."""
        if self not in _live_stacks:
            return
        _live_stacks.remove(self)
        try:
            if self.started_pids:
                self.record_pids()
            pidfiles = {n: self.pid(n) for n in ("supervisor", "nginx", "fcgi", "installer")}
            rc, down_out = self.run_script("down", check=False)
            deadline = time.monotonic() + 3
            left = [p for p in self.started_pids if alive(p)] + self.sv_pids()
            while left and time.monotonic() < deadline:
                time.sleep(0.05)
                left = [p for p in self.started_pids if alive(p)] + self.sv_pids()
            left = sorted(set(left))
            if left:
                desc = ", ".join(f"{p} ({proc_comm(p)})" for p in left)
                for p in left:  # do not leak them into the next test
                    try:
                        os.kill(p, 9)
                    except OSError:
                        pass
                raise AssertionError(f"deploy/down left processes running: {desc}; pid files"
                                     f" before down: {pidfiles}; deploy/down exited {rc}:\n"
                                     f"{down_out}")
            self.check_sanitizer_reports()
        finally:
            if os.environ.get("MG_KEEP_ROOT") != "1":
                shutil.rmtree(self.root, ignore_errors=True)
            else:
                print(f"mgtest: kept root {self.root}", file=sys.stderr)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def check_sanitizer_reports(self):
        """Fails when a sanitizer (ASan, LSan, UBSan) reported anything in the daemons' logs, or
        an nginx worker died."""
        for name in ("fcgi", "installer"):
            text = self.log(name)
            for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                at = text.find(marker)
                if at >= 0:
                    raise AssertionError(f"sanitizer report in run/{name}.log:\n"
                                         + text[max(0, at - 200):at + 4000])
        # an nginx worker that died (nchan asserts abort it) dropped the requests it served;
        # SIGKILL (9) comes from a test, never from a crash
        text = self.log("nginx-error")
        found = re.search(r"exited on signal (?!9\b)\d+", text)
        at = found.start() if found else -1
        if at >= 0:
            raise AssertionError("an nginx worker crashed (run/nginx-error.log):\n"
                                 + text[max(0, at - 600):at + 200])

    def diagnostics(self, lines=30):
        out = []
        for name in ("nginx-error", "fcgi", "installer", "supervisor"):
            text = self.log(name).splitlines()[-lines:]
            if text:
                out.append(f"--- {self.root}/run/{name}.log ---")
                out.extend(text)
        return "\n".join(out)

    # --- HTTP ---

    def request(self, method, path, body=None, headers=None, timeout=15.0):
        return request(self.port, method, path, body, headers, timeout)

    def get(self, path, headers=None):
        return self.request("GET", path, headers=headers)

    def head(self, path, headers=None):
        return self.request("HEAD", path, headers=headers)

    def post(self, path, body=None, headers=None):
        return self.request("POST", path, body, headers)

    def delete(self, path, headers=None):
        return self.request("DELETE", path, headers=headers)

    def search(self, params=None, raw=None):
        """GET /api/models/gallery/search with `params` (dict/pairs) or a raw query string."""
        q = raw if raw is not None else qs(params or {})
        return self.get("/api/models/gallery/search" + (("?" + q) if q else ""))

    def gallery(self):
        return self.get("/api/models/gallery")

    def publish(self, message):
        """POSTs `message` (a dict, sent as JSON) to the nchan publisher of this root, as
        mg-installer does. Returns the HTTP status."""
        conn = UnixHTTPConnection(self.path("run", "nchan.sock"))
        try:
            body = json.dumps(message).encode()
            conn.request("POST", "/pub/progress", body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            return r.status
        finally:
            conn.close()

    def url(self, path=""):
        return f"http://127.0.0.1:{self.port}{path}"


# --- assertions --------------------------------------------------------------------------

class StackTestCase(unittest.TestCase):
    """unittest.TestCase with the contract's answer checks."""

    maxDiff = None

    def assertJsonAnswer(self, r, status=None):
        if status is not None:
            self.assertEqual(r.status, status, f"status {r.status}, wanted {status}: {r.body[:400]!r}")
        ct = r.header("content-type", "")
        self.assertTrue(ct.startswith("application/json"),
                        f"Content-Type {ct!r} for {r.status}: {r.body[:200]!r}")
        return r.json

    def assertError(self, r, status, code, parameter, message=None):
        """An error answer of the contract's shape {"error": {code, message, parameter?}} with
        this status, this code and this parameter: `code` and `parameter` are required, and
        parameter=None means the answer names none (no "parameter" key). `message`: words (a
        str, or a list of them) the message must contain. Returns the error object."""
        body = self.assertJsonAnswer(r, status)
        self.assertIsInstance(body, dict, body)
        self.assertEqual(set(body), {"error"}, body)
        err = body["error"]
        self.assertIsInstance(err, dict, body)
        self.assertLessEqual(set(err), {"code", "message", "parameter"}, body)
        self.assertIsInstance(code, str, "assertError needs the expected code")
        self.assertEqual(err.get("code"), code, body)
        self.assertIsInstance(err.get("message"), str, body)
        self.assertTrue(err["message"].strip(), body)
        if parameter is None:
            self.assertNotIn("parameter", err, f"{body}: the error names no parameter")
        else:
            self.assertEqual(err.get("parameter"), parameter, body)
        for words in ([message] if isinstance(message, str) else message or []):
            self.assertIn(words, err["message"], body)
        return err

    def assertIds(self, r, ids, msg=None):
        body = self.assertJsonAnswer(r, 200)
        got = [m["id"] for m in body["models"]]
        self.assertEqual(got, list(ids), msg or f"query answer ids; total={body.get('total')}")
        return body


def load_cases(name):
    """The case table tests/data/cases/<name> (see tests/data/cases/README.md): one JSON
    object per line, blank lines and '#' comments skipped, each given "line" (its line number)
    and every {"$repeat": v, "times": n} expanded (a string: prefix + v n times + suffix; any
    other value, or a string with "array": true: a list of n copies)."""
    def expand(v):
        if isinstance(v, dict) and "$repeat" in v:
            rep, n = v["$repeat"], v["times"]
            if isinstance(rep, str) and not v.get("array"):
                return v.get("prefix", "") + rep * n + v.get("suffix", "")
            return [expand(rep) for _ in range(n)]
        if isinstance(v, dict):
            return {k: expand(x) for k, x in v.items()}
        if isinstance(v, list):
            return [expand(x) for x in v]
        return v

    out = []
    with open(os.path.join(DATA, "cases", name), encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            case = expand(json.loads(line))
            if not isinstance(case, dict):
                raise AssertionError(f"{name}:{number} is not a JSON object")
            case["line"] = number
            out.append(case)
    return out


def load_fixture(name="gallery_it.json"):
    with open(os.path.join(DATA, name)) as f:
        return json.load(f)


def main():
    """unittest.main with verbose output (each test file is one ctest test)."""
    unittest.main(verbosity=2)


class SharedStackTestCase(StackTestCase):
    """A StackTestCase whose tests share one stack on the integration fixture gallery,
    started before the first test of the class and stopped after the last."""

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(gallery="gallery_it.json")

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()
