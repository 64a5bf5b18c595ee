// http.mjs - requests exactly as the contract rows describe them, with node:http (fetch would
// not send a Host, Origin or raw path of our choosing): plain answers, the first events of an
// EventSource stream, and a WebSocket handshake with its first text frames.
import http from 'node:http';
import { randomBytes } from 'node:crypto';

// Sends one request; resolves {status, headers, body (string)}. `path` goes out as it is.
// `stream` (ms): for text/event-stream answers, reads for at most that long (or until a
// moment after the first event), then closes.
// `from`: the local address to send from (127.0.0.2: a client that is not 127.0.0.1).
export function request(port, { method = 'GET', path, headers = {}, body, stream = 0, from }) {
  return new Promise((resolve, reject) => {
    // A body goes with its Content-Length (node would send a DELETE's body unannounced).
    const length = body === undefined ? {} : { 'Content-Length': Buffer.byteLength(body) };
    const req = http.request({
      host: '127.0.0.1', port, method, path, localAddress: from,
      headers: { Host: `127.0.0.1:${port}`, ...length, ...headers },
    });
    req.setTimeout(30000, () => req.destroy(new Error(`${method} ${path}: no answer in 30 s`)));
    req.on('error', reject);
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode, headers: res.headers, body: '' });
    });
    req.on('response', (res) => {
      const chunks = [];
      let timer = null;
      let early = false;
      const done = () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
      };
      const streaming = stream && /^text\/event-stream/.test(res.headers['content-type'] || '');
      const close = () => { res.removeAllListeners('end'); res.destroy(); done(); };
      res.on('data', (c) => {
        chunks.push(c);
        // an event has come: wait a moment for those replayed with it, then close
        if (streaming && !early && /\ndata:[^\n]*\n\n/.test(Buffer.concat(chunks).toString('utf8'))) {
          clearTimeout(timer);
          timer = setTimeout(close, 150);
          early = true;
        }
      });
      res.on('end', done);
      res.on('error', done);
      if (streaming) timer = setTimeout(close, stream);
    });
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// The `data:` payloads of a text/event-stream body.
export function sseData(body) {
  return body.split(/\r?\n\r?\n/).map((ev) => ev.split(/\r?\n/)
    .filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, '')).join('\n'))
    .filter((d) => d.length);
}

// Text payloads of the unmasked server frames in `buf` (RFC 6455 5.2); stops at a partial frame.
function wsFrames(buf) {
  const out = [];
  let i = 0;
  while (i + 2 <= buf.length) {
    const opcode = buf[i] & 0x0f;
    let len = buf[i + 1] & 0x7f;
    let at = i + 2;
    if (len === 126) { if (at + 2 > buf.length) break; len = buf.readUInt16BE(at); at += 2; }
    else if (len === 127) { if (at + 8 > buf.length) break; len = Number(buf.readBigUInt64BE(at)); at += 8; }
    if (at + len > buf.length) break;
    if (opcode === 1) out.push(buf.subarray(at, at + len).toString('utf8'));
    i = at + len;
  }
  return out;
}

// A WebSocket handshake; resolves {status, headers, body: '', frames: [text...]} with the text
// frames that came within `ms` or a moment after the first (the answer itself when the
// handshake was refused).
export function websocket(port, { path, headers = {}, ms = 1500 }) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, path,
      headers: {
        Host: `127.0.0.1:${port}`, Connection: 'Upgrade', Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': randomBytes(16).toString('base64'), ...headers,
      },
    });
    req.setTimeout(30000, () => req.destroy(new Error(`websocket ${path}: no answer in 30 s`)));
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), frames: [] }));
    });
    req.on('upgrade', (res, socket, head) => {
      const chunks = [head];
      const close = () => {
        clearTimeout(timer);
        socket.destroy();
        resolve({ status: res.statusCode, headers: res.headers, body: '', frames: wsFrames(Buffer.concat(chunks)) });
      };
      let timer = setTimeout(close, ms);
      let early = false;
      socket.on('data', (c) => {
        chunks.push(c);
        if (!early && wsFrames(Buffer.concat(chunks)).length) {   // the first frame: a moment more
          early = true;
          clearTimeout(timer);
          timer = setTimeout(close, 150);
        }
      });
      socket.on('error', () => {});
    });
    req.end();
  });
}
