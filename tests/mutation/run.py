#!/usr/bin/env python3
"""tests/mutation/run.py - mutation testing: puts realistic bugs (mutants.txt) one at a time
into a scratch copy of the repository, rebuilds it, runs the tests named for that mutant, and
prints which mutants the tests killed (some test failed) and which survived, and the score.
Not part of the test command: it takes a while (one rebuild and a few tests per mutant).

    tests/mutation/run.py                 # every mutant
    tests/mutation/run.py ID ...          # only these
    tests/mutation/run.py --list          # the mutants and the tests they run
    tests/mutation/run.py --check         # only checks that every mutant applies

Environment: MG_MUTATION_LIST (another list of mutants in the same format), MG_MUTATION_DIR
(the scratch folder; default a new one in /tmp, removed at the end unless MG_MUTATION_KEEP=1),
MG_MUTATION_TIMEOUT (seconds per ctest test, default 180), MG_MUTATION_JOBS (ctest -j,
default 1: the machine is shared).

mutants.txt holds blocks:

    [id]
    file   core/gallery.c
    tests  unit.test_cases|integration.test_boundaries     (ctest -R: names or prefixes,
                                                           "|" between, "$" to end one)
    what   a checksum one hex digit short is accepted
    - original line(s), after "- "
    + replacement line(s), after "+ "

Several -/+ groups make one mutant of several hunks. Each group of "-" lines must occur
exactly once in the file (leading white space is not compared). Before any mutant the tests
of every mutant run once on the unchanged copy and must pass."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
LIST = os.environ.get("MG_MUTATION_LIST") or os.path.join(HERE, "mutants.txt")
TIMEOUT = int(os.environ.get("MG_MUTATION_TIMEOUT", "180"))
JOBS = os.environ.get("MG_MUTATION_JOBS", "1")


class Mutant:
    def __init__(self, mid, line):
        self.id, self.line = mid, line
        self.file = self.tests = self.what = None
        self.hunks = []  # [(old lines, new lines)]

    def add(self, sign, text):
        if sign == "-" and (not self.hunks or self.hunks[-1][1]):
            self.hunks.append(([], []))
        if not self.hunks:
            raise SyntaxError(f"mutant {self.id}: '+' before any '-'")
        self.hunks[-1][0 if sign == "-" else 1].append(text)


def parse(path):
    mutants, cur = [], None
    with open(path) as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            m = re.fullmatch(r"\[([A-Za-z0-9_.-]+)\]\s*", line)
            if m:
                cur = Mutant(m.group(1), n)
                mutants.append(cur)
                continue
            if cur is None:
                raise SyntaxError(f"{path}:{n}: text before the first [id]")
            if line[:2] in ("- ", "+ ") or line in ("-", "+"):
                cur.add(line[0], line[2:])
                continue
            key, _, value = line.partition(" ")
            if key not in ("file", "tests", "what"):
                raise SyntaxError(f"{path}:{n}: unknown key {key!r}")
            setattr(cur, key, value.strip())
    for m in mutants:
        if not (m.file and m.tests and m.what and m.hunks):
            raise SyntaxError(f"{path}:{m.line}: mutant {m.id} lacks file, tests, what or a hunk")
    ids = [m.id for m in mutants]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise SyntaxError(f"duplicate mutant ids: {sorted(dup)}")
    return mutants


def hunk_regex(lines):
    """The "-" lines as a regex: each line exact after its leading white space."""
    return re.compile("\n".join(r"[ \t]*" + re.escape(ln.lstrip()) for ln in lines))


def apply(text, mutant):
    """`text` with every hunk of `mutant` replaced; raises when a hunk is not found once."""
    for old, new in mutant.hunks:
        rx = hunk_regex(old)
        found = list(rx.finditer(text))
        if len(found) != 1:
            raise LookupError(f"mutant {mutant.id}: {len(found)} matches in {mutant.file} for "
                              f"{old[0].strip()!r}")
        m = found[0]
        indent = re.match(r"[ \t]*", m.group(0)).group(0)
        repl = "\n".join(indent + ln.lstrip() if i == 0 else ln for i, ln in enumerate(new))
        text = text[:m.start()] + repl + text[m.end():]
    return text


def run(cmd, cwd, log, timeout=None, env=None):
    with open(log, "a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        try:
            return subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=timeout, env=env).returncode
        except subprocess.TimeoutExpired:
            return 124


def scratch_copy(dest):
    """The files of the repository that git tracks or would add (not ignored ones), as they
    are in the work tree, and links to the Node packages the browser and contract tests
    installed (no registry is asked again)."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                            "--exclude-standard"], cwd=REPO, check=True,
                           stdout=subprocess.PIPE).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = os.path.join(REPO, rel)
        if not os.path.isfile(src):
            continue
        dst = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(src, dst)
    for rel in ("tests/e2e/node_modules", "tests/contract/node_modules"):
        if os.path.isdir(os.path.join(REPO, rel)):
            os.symlink(os.path.join(REPO, rel), os.path.join(dest, rel))


def ctest(build, regex, log):
    return run(["ctest", "-R", regex, "-j", JOBS, "--timeout", str(TIMEOUT),
                "--stop-on-failure", "--output-on-failure", "--no-tests=error"], build, log)


def main(argv):
    mutants = parse(LIST)
    if "--list" in argv:
        for m in mutants:
            print(f"{m.id:32} {m.file:28} {m.tests}\n{'':32} {m.what}")
        print(f"{len(mutants)} mutants")
        return 0
    if "--check" in argv:
        stale = 0
        for m in mutants:
            with open(os.path.join(REPO, m.file)) as f:
                try:
                    apply(f.read(), m)
                except LookupError as e:
                    print(e)
                    stale += 1
        print(f"{len(mutants) - stale} of {len(mutants)} mutants of {LIST} apply to {REPO}")
        return 1 if stale else 0
    wanted = [a for a in argv if not a.startswith("-")]
    unknown = set(wanted) - {m.id for m in mutants}
    if unknown:
        print(f"unknown mutants: {sorted(unknown)}", file=sys.stderr)
        return 2
    if wanted:
        mutants = [m for m in mutants if m.id in wanted]

    root = os.environ.get("MG_MUTATION_DIR") or tempfile.mkdtemp(prefix="mg-mutation-")
    os.chmod(root, 0o711)  # run as root, the stack's service user must reach the build in it
    src, build, log = os.path.join(root, "src"), os.path.join(root, "build"), \
        os.path.join(root, "mutation.log")
    print(f"scratch copy in {root} (log: {log})", flush=True)
    if not os.path.isdir(src):
        scratch_copy(src)
    originals = {}
    for m in mutants:  # every mutant applies before anything runs
        path = os.path.join(src, m.file)
        originals.setdefault(m.file, open(path).read())
        apply(originals[m.file], m)

    started = time.monotonic()
    if run(["cmake", "-S", src, "-B", build, "-DCMAKE_BUILD_TYPE=RelWithDebInfo"], root, log) \
            or run(["cmake", "--build", build, "-j2"], root, log):
        print(f"the unchanged copy does not build; see {log}")
        return 1
    # one alternation, no groups: ctest's regular expressions allow few of them
    every = "|".join(sorted({alt for m in mutants for alt in m.tests.split("|")}))
    if ctest(build, every, log) != 0:
        print(f"the tests fail on the unchanged copy; see {log}")
        return 1
    print(f"baseline: built and passing in {time.monotonic() - started:.0f} s", flush=True)

    killed, survived, broken = [], [], []
    for i, m in enumerate(mutants, 1):
        path = os.path.join(src, m.file)
        t0 = time.monotonic()
        with open(log, "a") as out:
            out.write(f"\n===== mutant {m.id}: {m.what}\n")
        try:
            with open(path, "w") as f:
                f.write(apply(originals[m.file], m))
            if run(["cmake", "--build", build, "-j2"], root, log) != 0:
                broken.append(m)
                verdict = "DOES NOT BUILD"
            elif ctest(build, m.tests, log) != 0:
                killed.append(m)
                verdict = "killed"
            else:
                survived.append(m)
                verdict = "SURVIVED"
        finally:
            with open(path, "w") as f:
                f.write(originals[m.file])
        print(f"[{i:2}/{len(mutants)}] {verdict:14} {m.id:32} {time.monotonic() - t0:5.0f} s  "
              f"{m.what}", flush=True)

    run(["cmake", "--build", build, "-j2"], root, log)
    scored = len(killed) + len(survived)
    print(f"\n{len(killed)} of {scored} mutants killed: score "
          f"{100.0 * len(killed) / scored if scored else 0:.1f} %"
          f" ({time.monotonic() - started:.0f} s)")
    for m in survived:
        print(f"  survived: {m.id} ({m.file}): {m.what}")
    for m in broken:
        print(f"  does not build (not scored; fix the list): {m.id}")
    if not os.environ.get("MG_MUTATION_DIR") and os.environ.get("MG_MUTATION_KEEP") != "1":
        shutil.rmtree(root, ignore_errors=True)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
