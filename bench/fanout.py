#!/usr/bin/env python3
"""fanout.py - progress fan-out, measured from the outside (stdlib only; bench/fanout_bench.sh
runs it). Opens N WebSocket subscribers of /api/models/ws/progress on each node given (in
--workers processes), waits until the replayed buffer has arrived, then POSTs progress
messages into nchan's publisher socket of each publishing node (as mg-installer does,
HTTP/1.1 keep-alive over the unix socket; in this process) for a while, and counts what
every subscriber receives.

    fanout.py --sub PORT:N [--sub PORT:N ...] --pub SOCKET [--pub SOCKET ...]
              --seconds S --rate R|max [--publishers K] [--workers W]

Prints one JSON object: published messages and their rate, deliveries (messages received
by all subscribers together) per second, the share of the expected deliveries that arrived
(published x subscribers), and the delivery latency (publish to receipt) at p50/p99 of every
frame of one subscriber per process. The other subscribers count bytes only (the messages
of a run all have one length), read 32 KiB at a time (SO_RCVLOWAT), so that the client costs
little next to nginx.
"""

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import resource
import socket
import time

PAD = "x" * 100   # a message about as large as a real progress message (~300 bytes)


def message(run, seq):
    """A progress message of this run, always the same length (so that a subscriber may count
    frames by their bytes): seq and the time have fixed widths."""
    return (f'{{"model_id":"bench-fanout","job_id":"{run}","kind":"install",'
            f'"status":"downloading","progress":42.5,"downloaded":{seq:12d},'
            f'"total":1073741824,"bytes_per_second":1048576,"eta_s":60,"error":null,'
            f'"error_code":null,"node":"bench","t":{time.time():.6f},"pad":"{PAD}"}}').encode()


def frame_len(run):
    n = len(message(run, 0))
    return n + (2 if n < 126 else 4)


class Subscriber:
    """One WebSocket subscriber. Counting ones only add up the bytes that arrive after "go"
    (frames of this run all have one length); parsing ones read every frame, for the
    latency (publish to receipt) and as a check of the counting."""

    def __init__(self, run, parse):
        self.run = run
        self.parse = parse
        self.frames = 0         # frames of this run (parsing ones)
        self.seen = 0           # bytes before "go"
        self.bytes = 0          # bytes after "go"
        self.counting = False
        self.lat = []

    def count(self, flen):
        return self.frames if self.parse else self.bytes // flen

    def batch(self, on):
        """A counting subscriber is woken only for 32 KiB at a time while on (a read per
        frame would make this client, not nginx, what is measured)."""
        if not self.parse:
            self.writer.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_RCVLOWAT, 32768 if on else 1)

    async def open(self, port):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        self.writer.write((f"GET /api/models/ws/progress HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                           f"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                          .encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"handshake: {head[:80]!r}")

    async def read(self):
        buf = b""
        r = self.reader
        try:
            while True:
                chunk = await r.read(65536)
                if not chunk:
                    return
                if not self.counting:
                    self.seen += len(chunk)
                elif not self.parse:
                    self.bytes += len(chunk)
                    continue
                buf += chunk
                buf = self.frames_in(buf)
        except (ConnectionError, asyncio.CancelledError):
            return

    def frames_in(self, buf):
        """Counts the whole frames at the start of buf; returns the rest."""
        i, n = 0, len(buf)
        while n - i >= 2:
            op, ln = buf[i] & 0x0F, buf[i + 1] & 0x7F
            j = i + 2
            if ln == 126:
                if n - j < 2:
                    break
                ln = int.from_bytes(buf[j:j + 2], "big")
                j += 2
            elif ln == 127:
                if n - j < 8:
                    break
                ln = int.from_bytes(buf[j:j + 8], "big")
                j += 8
            if n - j < ln:
                break
            if op == 0x1:
                self.text(buf, j, ln)
            elif op == 0x9:  # ping: pong (masked, empty)
                self.writer.write(b"\x8a\x80" + os.urandom(4))
            i = j + ln
        return buf[i:]

    def text(self, buf, j, ln):
        if buf.find(self.run, j, j + ln) < 0:
            return  # replayed from before this run
        self.frames += 1
        try:
            self.lat.append(time.time() - json.loads(buf[j:j + ln])["t"])
        except (ValueError, KeyError):
            pass

    def close(self):
        self.writer.close()


async def publisher(sock, run, rate, until, counter):
    """POSTs messages to nchan at `rate` per second (None: as fast as answers come)."""
    reader, writer = await asyncio.open_unix_connection(sock)
    seq, start = 0, time.monotonic()
    while time.monotonic() < until:
        if rate:
            ahead = start + seq / rate - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
        body = message(run.decode(), seq)
        writer.write(b"POST /pub/progress HTTP/1.1\r\nHost: localhost\r\n"
                     b"Content-Type: application/json\r\nAccept: application/json\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        if head.startswith(b"HTTP/1.1 20"):
            counter[0] += 1
        else:
            counter[1] += 1
        seq += 1
    writer.close()


def pct(values, p):
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(len(values) * p / 100))] * 1000, 1)


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def subscribers(conn, ports, run):
    """One subscriber process: opens a WebSocket per entry of `ports`, tells the parent when
    the replayed buffers are in, counts from "go" until "stop" (then up to 5 s more, until
    each subscriber has the expected count), and sends back the counts and latencies."""
    subs = []
    flen = frame_len(run.decode())
    for batch in range(0, len(ports), 50):
        group = [Subscriber(run, batch + i == 0) for i, _ in enumerate(ports[batch:batch + 50])]
        await asyncio.gather(*(s.open(p) for s, p in zip(group, ports[batch:batch + 50])))
        subs += group
    tasks = [asyncio.ensure_future(s.read()) for s in subs]
    last, quiet = -1, 0
    while quiet < 3:  # the buffer each subscriber gets replayed first: until it is quiet
        await asyncio.sleep(0.2)
        total = sum(s.seen for s in subs)
        quiet = quiet + 1 if total == last else 0
        last = total
    conn.send("ready")
    while not conn.poll():
        await asyncio.sleep(0.01)
    conn.recv()  # go
    for s in subs:
        s.counting = True
        s.batch(True)
    conn.send("counting")
    while not conn.poll():
        await asyncio.sleep(0.01)
    expected = conn.recv()  # the number of messages published
    for s in subs:
        s.batch(False)
    deadline = time.monotonic() + 5
    while any(s.count(flen) < expected for s in subs) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    done = time.monotonic()
    for t in tasks:
        t.cancel()
    for s in subs:
        s.close()
    conn.send(([s.count(flen) for s in subs], [x for s in subs for x in s.lat], done))


def subscriber_process(conn, ports, run):
    raise_fd_limit()
    asyncio.run(subscribers(conn, ports, run))


async def publish(a, run):
    rate = None if a.rate == "max" else float(a.rate) / (len(a.pub) * a.publishers)
    counter = [0, 0]
    t0 = time.monotonic()
    await asyncio.gather(*(publisher(p, run, rate, t0 + a.seconds, counter)
                           for p in a.pub for _ in range(a.publishers)))
    return counter, t0, time.monotonic() - t0


def main(a):
    run = os.urandom(6).hex().encode()
    ports = [int(port) for spec in a.sub for port, n in [spec.split(":")] for _ in range(int(n))]
    procs, conns = [], []
    for w in range(a.workers):
        parent, child = multiprocessing.Pipe()
        pr = multiprocessing.Process(target=subscriber_process,
                                     args=(child, ports[w::a.workers], run))
        pr.start()
        procs.append(pr)
        conns.append(parent)
    for c in conns:
        if c.recv() != "ready":
            raise SystemExit("a subscriber process failed")
    for c in conns:
        c.send("go")
    for c in conns:
        c.recv()  # counting: nothing published from here on is missed
    counter, t0, published_s = asyncio.run(publish(a, run))
    for c in conns:
        c.send(counter[0])
    frames, lat, done = [], [], t0
    for c in conns:
        f, l, d = c.recv()
        frames += f
        lat += l
        done = max(done, d)
    for pr in procs:
        pr.join(10)
    got, expected = sum(frames), counter[0] * len(ports)
    print(json.dumps({
        "subscribers": len(ports), "published": counter[0], "publish_errors": counter[1],
        "publish_per_s": round(counter[0] / published_s, 1),
        "deliveries": got, "deliveries_per_s": round(got / (done - t0)),
        "delivered_share": round(got / expected, 4) if expected else None,
        "latency_ms_p50": pct(lat, 50), "latency_ms_p99": pct(lat, 99),
        "slowest_subscriber_share": round(min(frames) / counter[0], 4) if counter[0] else None,
    }))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--sub", action="append", required=True, help="PORT:N subscribers")
    ap.add_argument("--pub", action="append", required=True, help="nchan publisher socket")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rate", default="max", help="messages per second in all, or max")
    ap.add_argument("--publishers", type=int, default=2, help="connections per socket")
    ap.add_argument("--workers", type=int, default=2, help="subscriber processes")
    main(ap.parse_args())
