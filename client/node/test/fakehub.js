'use strict';
// A fake pipehubd over a Unix domain socket, for tests. It speaks the wire
// protocol with the package's own codec: answers sys.* built-ins with empty
// (or small JSON) REPLYs and records them, echoes requests to 'echo', and
// lets a test push EVENTs, forwarded REQUESTs and raw bytes to the client.
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const fs = require('node:fs');
const { encode, Decoder, KIND } = require('../lib/codec');

let seq = 0;

class FakeHub {
  constructor() {
    this.path = path.join(os.tmpdir(), `pipehub-test-${process.pid}-${++seq}.sock`);
    this.conns = [];       // { sock, chunks: number, frames: [] }
    this.sysCalls = [];    // { route, payload (string) }
    this.held = [];        // requests to 'hold' (not answered)
    this.answers = [];     // REPLY/ERROR frames the client sent
    this.onRequest = null; // (conn, frame) => true when handled
    this.server = net.createServer((sock) => this._accept(sock));
  }

  listen() {
    try { fs.unlinkSync(this.path); } catch { /* none */ }
    return new Promise((resolve) => this.server.listen(this.path, resolve));
  }

  get conn() { return this.conns[this.conns.length - 1]; }

  _accept(sock) {
    const conn = { sock, chunks: 0, frames: [], decoder: new Decoder() };
    this.conns.push(conn);
    sock.on('error', () => {});
    sock.on('data', (chunk) => {
      conn.chunks++;
      for (const f of conn.decoder.push(chunk)) {
        conn.frames.push(f);
        this._frame(conn, f);
      }
    });
  }

  _frame(conn, f) {
    if (f.kind === KIND.REPLY || f.kind === KIND.ERROR) { this.answers.push(f); return; }
    if (f.kind !== KIND.REQUEST) return;
    if (this.onRequest && this.onRequest(conn, f)) return;
    const reply = (payload) => this.send(conn, { kind: KIND.REPLY, id: f.id, payload });
    switch (f.route) {
      case 'sys.subscribe':
      case 'sys.unsubscribe':
      case 'sys.register':
      case 'sys.unregister':
        this.sysCalls.push({ route: f.route, payload: f.payload.toString() });
        reply();
        return;
      case 'sys.hello':
        reply(JSON.stringify({ server: 'fake', protocol: 1, max_frame: 1048576, conn_id: this.conns.length, client: f.payload.toString() }));
        return;
      case 'sys.routes':
        reply(JSON.stringify([{ route: 'sys.echo', kind: 'builtin' }]));
        return;
      case 'sys.stats':
        reply(JSON.stringify({ uptime_ms: 5, connections_current: this.conns.length }));
        return;
      case 'sys.client':
        reply(JSON.stringify({ conn_id: Number(f.payload.toString()), pid: 4242 }));
        return;
      case 'echo':
        reply(f.payload);
        return;
      case 'hold':
        this.held.push(f);
        return;
      default:
        this.send(conn, { kind: KIND.ERROR, id: f.id, status: 3, payload: `no route '${f.route}'` });
    }
  }

  calls(route) { return this.sysCalls.filter((c) => c.route === route).map((c) => c.payload); }

  send(conn, frame) { (conn || this.conn).sock.write(encode(frame)); }

  event(topic, payload) { this.send(null, { kind: KIND.EVENT, route: topic, payload }); }

  close() {
    for (const c of this.conns) c.sock.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** Wait until pred() is true, polling; fail after ms. */
async function waitFor(pred, ms = 2000, what = 'condition') {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Resolve with promise's value, or fail after ms. */
function within(promise, ms = 2000, what = 'promise') {
  let t;
  return Promise.race([
    promise,
    new Promise((_, reject) => { t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms); }),
  ]).finally(() => clearTimeout(t));
}

module.exports = { FakeHub, waitFor, within };
