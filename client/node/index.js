'use strict';
// pipehub client for Node.js: calls, publish/subscribe and serving routes
// over the pipehubd named pipe (docs/PROTOCOL.md). No dependencies.

const net = require('node:net');
const { EventEmitter } = require('node:events');
const codec = require('./lib/codec');
const { CODES, codeName, PipehubError, AbortError, abortError, localError } = require('./lib/errors');

const { KIND, MAX_FRAME, HEADER_LEN, Decoder, frameSize, toBuffer, isValidRoute, parseFrame } = codec;

const DEFAULT_MAX_QUEUED = 64 * 1024 * 1024;
const DEFAULT_CALL_TIMEOUT = 25000;
// Frames are encoded straight into output chunks of this size (a larger
// frame gets a chunk of its own); what one tick queued leaves in one write.
const OUT_CHUNK = 64 * 1024;
// Deadline lists (one per timeoutMs in use) kept while empty.
const MAX_DEADLINE_LISTS = 8;
const MAX_TIMER = 0x7fffffff;
const DESCRIBE_MAX = 16 * 1024;
const ERROR_MSG_MAX = 200;
// Topics the hub sends without a subscription: listened for, never asked.
const LISTEN_ONLY = new Set(['sys.shutdown', 'sys.route.acquired', 'sys.monitor']);
const RETRYABLE = new Set(['EBUSY', 'ENOENT', 'ECONNREFUSED', 'EAGAIN']);

/** `\\.\pipe\NAME` for a bare name; a `\\.\pipe\` path is kept. */
function pipePath(pipe) {
  if (typeof pipe !== 'string' || pipe.length === 0) throw new TypeError('pipe must be a non-empty string');
  if (/^\\\\[.?]\\pipe\\/i.test(pipe)) return pipe;
  return '\\\\.\\pipe\\' + pipe;
}

function isPattern(p) {
  if (p === '*') return true;
  if (typeof p !== 'string' || p.length === 0 || p.length > codec.ROUTE_MAX) return false;
  if (p.endsWith('.*')) return p.length > 2 && isValidRoute(p.slice(0, -2));
  return isValidRoute(p);
}

/** Does a subscription pattern (topic, `prefix.*` or `*`) match topic? */
function matches(pattern, topic) {
  if (pattern === '*' || pattern === topic) return true;
  if (pattern.endsWith('.*')) {
    const prefix = pattern.slice(0, -1); // keeps the dot
    return topic.length > prefix.length && topic.startsWith(prefix);
  }
  return false;
}

function checkRoute(route, what) {
  if (typeof route !== 'string' || route.length === 0 || !isValidRoute(route)) {
    throw new TypeError(`bad ${what} ${JSON.stringify(route)}: 1..255 of A-Za-z0-9._-/`);
  }
}

function cutUtf8(msg, max) {
  const b = Buffer.from(String(msg), 'utf8');
  if (b.length <= max) return b;
  let n = max;
  while (n > 0 && (b[n] & 0xc0) === 0x80) n--;
  return b.subarray(0, n);
}

function parseJson(buf) {
  return buf.length === 0 ? null : JSON.parse(buf.toString('utf8'));
}

function checkTimeout(ms, what) {
  if (typeof ms !== 'number' || !(ms > 0)) throw new TypeError(`${what} must be a positive number of milliseconds`);
  return Math.min(Math.ceil(ms), MAX_TIMER);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Open a socket to path. While the pipe is busy or does not exist yet, retry
 * with a short delay until timeoutMs; then reject with code ETIMEDOUT (busy,
 * or the connect never completed) or ENOENT (nothing serves the name).
 */
function openSocket(path, timeoutMs) {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + timeoutMs;
    let delay = 10;
    let lastCode = null;
    let sock = null;
    let retryTimer = null;
    let done = false;
    const overall = setTimeout(() => {
      const notFound = lastCode === 'ENOENT' || lastCode === 'ECONNREFUSED';
      fail(notFound
        ? localError('ENOENT', `pipe ${path} not found (waited ${timeoutMs} ms)`)
        : localError('ETIMEDOUT', `pipe ${path} stayed busy for ${timeoutMs} ms`));
    }, timeoutMs);
    function fail(err) {
      if (done) return;
      done = true;
      clearTimeout(overall);
      clearTimeout(retryTimer);
      if (sock) sock.destroy();
      reject(err);
    }
    function attempt() {
      if (done) return;
      const s = net.connect({ path });
      sock = s;
      s.once('connect', () => {
        if (done) { s.destroy(); return; }
        done = true;
        clearTimeout(overall);
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (err) => {
        s.destroy();
        if (done) return;
        sock = null;
        if (!RETRYABLE.has(err.code)) { fail(err); return; }
        lastCode = err.code;
        if (Date.now() + delay >= deadline) return; // the overall timer reports it
        retryTimer = setTimeout(attempt, delay);
        delay = Math.min(delay * 2, 100);
      });
    }
    attempt();
  });
}

// A call in flight: in hub._pending by id, and in the deadline list of its
// timeoutMs (hub._deadlines), doubly linked, oldest first. A class rather
// than closures, and one timer per list rather than one per call: under
// Wine the garbage collector's work per call is what a pipelined caller
// pays most for.
class PendingCall {
  constructor(route, ms, resolve, reject) {
    this.id = 0;
    this.route = route;
    this.resolve = resolve;
    this.reject = reject;
    this.deadline = 0;
    this.list = null;
    this.prev = null;
    this.next = null;
    this.signal = null;
    this.onAbort = null;
    this.ms = ms;
  }
}

// The calls of one timeoutMs, deadlines in order (each is its start plus
// the same ms), and one timer for the first of them.
class DeadlineList {
  constructor(hub, ms) {
    this.hub = hub;
    this.ms = ms;
    this.head = null;
    this.tail = null;
    this.timer = null;
    this.fire = () => this._fire();
  }

  add(call) {
    call.deadline = performance.now() + this.ms;
    call.list = this;
    call.prev = this.tail;
    call.next = null;
    if (this.tail) this.tail.next = call; else this.head = call;
    this.tail = call;
    if (!this.timer) this.timer = setTimeout(this.fire, this.ms);
  }

  remove(call) {
    if (call.prev) call.prev.next = call.next; else this.head = call.next;
    if (call.next) call.next.prev = call.prev; else this.tail = call.prev;
    call.prev = call.next = call.list = null;
    // The timer stays: when it fires for a call that is gone it is set
    // again for the first one left (once per ms at most while calls flow).
    if (!this.head) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      // Lists of rarely used timeouts do not pile up.
      if (this.hub._deadlines.size > MAX_DEADLINE_LISTS) this.hub._deadlines.delete(this.ms);
    }
  }

  clear() {
    for (let c = this.head; c; ) {
      const next = c.next;
      c.prev = c.next = c.list = null;
      c = next;
    }
    this.head = this.tail = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  _fire() {
    this.timer = null;
    const now = performance.now();
    let c;
    while ((c = this.head) && c.deadline <= now) this.hub._expire(c);
    if (this.head && !this.timer) {
      this.timer = setTimeout(this.fire, Math.max(1, Math.ceil(this.head.deadline - now)));
    }
  }
}

class Subscription {
  constructor(hub, entry, fn) {
    this._hub = hub;
    this._entry = entry;
    this._fn = fn;
    this._done = false;
  }
  get pattern() { return this._entry.pattern; }
  /** Stop receiving; the hub is told when this was the pattern's last local subscription. */
  unsubscribe(options) { return this._hub._unsubscribe(this, options); }
}

class Registration {
  constructor(hub, route, handler, exclusive, description) {
    this._hub = hub;
    this.route = route;
    this.handler = handler;
    this.exclusive = exclusive;
    this.description = description;
    this.state = null; // the hub's answer to sys.register (parsed JSON), if any
    this._done = false;
  }
  _payload() {
    let p = this.route + (this.exclusive ? ' exclusive' : '');
    if (this.description) p += '\n' + this.description;
    return p;
  }
  /** Stop serving the route (sys.unregister). */
  unregister(options) { return this._hub._unregister(this, options); }
}

class Request {
  constructor(hub, frame) {
    this._hub = hub;
    this.route = frame.route;
    this.payload = frame.payload;
    this.id = frame.id;
    this.callerId = frame.status;
  }
  /** Who sent it: sys.client with the caller's id, parsed JSON. */
  async caller(options) {
    return parseJson(await this._hub.call('sys.client', String(this.callerId), options));
  }
}

class Hub extends EventEmitter {
  constructor(opts) {
    super();
    this._path = opts.path;
    this._name = opts.name;
    this._connectTimeoutMs = opts.timeoutMs;
    this._reconnect = opts.reconnect;
    this._maxQueued = opts.maxQueuedBytes;
    this._maxFrameOut = MAX_FRAME;
    this._socket = null;
    this._decoder = null;
    this._state = 'connecting'; // open | reconnecting | closed
    this._gen = 0;
    this._pending = new Map();
    this._deadlines = new Map(); // timeoutMs -> DeadlineList
    this._nextId = 1;
    this._out = [];      // full output chunks (subarrays), not written yet
    this._outBytes = 0;  // bytes in _out and in _chunk past _chunkStart
    this._chunk = null;  // the output chunk frames are encoded into
    this._chunkStart = 0; // its bytes before this were handed to write()
    this._chunkLen = 0;  // its bytes used
    this._rxGen = 0;     // the connection whose frames are being read
    this._flushScheduled = false;
    this._draining = false;
    this._subs = new Map();   // pattern -> { pattern, count, active: Set<Subscription>, ready }
    this._regs = new Map();   // route -> Registration
    this._iterators = new Set();
    this._routeSub = null;
    this._closeError = null;
    this._closePromise = null;
    this._wake = null;
    this.hello = null;
    this.lastServerError = null;
    this.on('newListener', (event) => {
      if (event === 'route.up' || event === 'route.down' || event === 'route.acquired') this._ensureRouteEvents();
    });
  }

  /** True while the pipe is connected. */
  get connected() { return this._state === 'open'; }

  /** Calls sent and not answered yet. */
  get pending() { return this._pending.size; }

  // ---- connection ---------------------------------------------------------

  _attach(sock) {
    const gen = ++this._gen;
    this._socket = sock;
    this._decoder = new Decoder({ maxFrame: MAX_FRAME });
    this._state = 'open';
    this._draining = false;
    let sockErr = null;
    sock.on('data', (chunk) => { if (gen === this._gen) this._onData(chunk, gen); });
    sock.on('error', (err) => { sockErr = err; });
    sock.on('drain', () => {
      if (gen !== this._gen) return;
      this._draining = false;
      this._flush();
    });
    sock.on('close', () => {
      if (gen !== this._gen) return;
      const cause = this.lastServerError || sockErr || undefined;
      this._lost(localError('ECONNRESET',
        'connection to pipehub lost' + (cause ? ': ' + cause.message : ''), cause));
    });
  }

  _onData(chunk, gen) {
    this._rxGen = gen;
    try {
      this._decoder.feed(chunk, this._onFrameAt, this);
    } catch (err) {
      if (!(err instanceof codec.FrameError)) throw err;
      if (gen === this._gen) {
        this._lost(localError('EPROTO', 'pipehub protocol error from the server: ' + err.message, err));
      }
    }
  }

  // The pipe broke (or the server misbehaved, or said sys.shutdown).
  _lost(err) {
    if (this._state !== 'open') return;
    this._gen++;
    if (this._socket) this._socket.destroy();
    this._socket = null;
    this._dropOutput();
    this._failPending(err);
    if (this._reconnect) {
      this._state = 'reconnecting';
      this.emit('disconnect', err);
      this._reconnectLoop();
    } else {
      this._final(err);
    }
  }

  _final(err) {
    this._state = 'closed';
    this._closeError = err;
    this._endIterators(err);
    this.emit('close', err);
  }

  _failPending(err) {
    const pending = [...this._pending.values()];
    this._pending.clear();
    for (const list of this._deadlines.values()) list.clear();
    for (const p of pending) {
      this._forget(p);
      p.reject(localError(err.code, err.message, err.cause));
    }
  }

  async _reconnectLoop() {
    const cfg = this._reconnect;
    let delay = cfg.initialDelayMs;
    let attempts = 0;
    while (this._state === 'reconnecting') {
      await new Promise((resolve) => {
        const t = setTimeout(resolve, delay);
        this._wake = () => { clearTimeout(t); resolve(); };
      });
      this._wake = null;
      if (this._state !== 'reconnecting') return;
      attempts++;
      let sock;
      try {
        sock = await openSocket(this._path, this._connectTimeoutMs);
      } catch (err) {
        if (this._state !== 'reconnecting') return;
        if (attempts >= cfg.maxAttempts) {
          this._final(localError('ECONNRESET', `reconnect gave up after ${attempts} attempts: ${err.message}`, err));
          return;
        }
        delay = Math.min(delay * 2, cfg.maxDelayMs);
        continue;
      }
      if (this._state !== 'reconnecting') { sock.destroy(); return; }
      this._attach(sock);
      const gen = this._gen;
      const errors = await this._restore();
      if (gen === this._gen && this._state === 'open') this.emit('reconnect', errors);
      return;
    }
  }

  // After a reconnect: hello, every subscription and registration again.
  async _restore() {
    const jobs = [];
    if (this._name !== undefined) jobs.push(this._hello());
    for (const entry of this._subs.values()) {
      if (!LISTEN_ONLY.has(entry.pattern)) jobs.push(this.call('sys.subscribe', entry.pattern));
    }
    for (const reg of this._regs.values()) {
      jobs.push(this.call('sys.register', reg._payload()).then((ans) => { reg.state = parseJsonSafe(ans); }));
    }
    const results = await Promise.allSettled(jobs);
    return results.filter((r) => r.status === 'rejected').map((r) => r.reason);
  }

  async _hello(timeoutMs) {
    const ans = await this.call('sys.hello', this._name, timeoutMs ? { timeoutMs } : undefined);
    this.hello = parseJsonSafe(ans);
    const mf = this.hello && this.hello.max_frame;
    if (Number.isInteger(mf) && mf >= codec.HEADER_LEN) this._maxFrameOut = Math.min(MAX_FRAME, mf);
    return this.hello;
  }

  /**
   * Close the connection: calls in flight reject with code ECLOSED; frames
   * already queued are written first. Resolves when the pipe is closed.
   */
  close() {
    if (this._closePromise) return this._closePromise;
    const sock = this._socket;
    const wasOpen = this._state === 'open';
    this._state = 'closed';
    this._gen++;
    this._socket = null;
    if (this._wake) this._wake();
    const err = localError('ECLOSED', 'connection closed');
    if (!this._closeError) this._closeError = err;
    this._failPending(err);
    this._endIterators(null);
    const rest = this._takeOutput();
    this._closePromise = new Promise((resolve) => {
      if (!sock || sock.destroyed) { resolve(); return; }
      const t = setTimeout(() => sock.destroy(), 1000);
      sock.once('close', () => { clearTimeout(t); resolve(); });
      if (rest) sock.write(rest);
      sock.end();
    }).then(() => { if (wasOpen || this._closeError === err) this.emit('close'); });
    return this._closePromise;
  }

  // An Error for an operation refused because the pipe is not open, or null.
  _stateError() {
    if (this._state === 'open') return null;
    if (this._state === 'reconnecting') return localError('ECONNRESET', 'connection to pipehub lost; reconnecting');
    const ce = this._closeError;
    if (!ce || ce.code === 'ECLOSED') return localError('ECLOSED', 'connection closed');
    return localError('ECONNRESET', 'connection closed: ' + ce.message, ce);
  }

  // ---- output -------------------------------------------------------------

  /** Bytes queued for the pipe and not yet written. */
  get queuedBytes() {
    return this._outBytes + (this._socket ? this._socket.writableLength : 0);
  }

  // Size and queue checks before anything is allocated: null or an error.
  _admit(size) {
    if (size > this._maxFrameOut) {
      return new PipehubError('TOO_LARGE', `frame of ${size} bytes exceeds max frame ${this._maxFrameOut}`);
    }
    if (this.queuedBytes + size > this._maxQueued) {
      return new PipehubError('BUSY', `outgoing queue full (${this.queuedBytes} bytes queued, limit ${this._maxQueued})`);
    }
    return null;
  }

  // Room for a frame of size bytes at _chunkLen: a full chunk is queued
  // and a new one started. Returns the chunk.
  _room(size) {
    const c = this._chunk;
    if (c && c.length - this._chunkLen >= size) return c;
    if (c && this._chunkLen > this._chunkStart) this._out.push(c.subarray(this._chunkStart, this._chunkLen));
    this._chunk = Buffer.allocUnsafeSlow(Math.max(OUT_CHUNK, size));
    this._chunkStart = 0;
    this._chunkLen = 0;
    return this._chunk;
  }

  // Encode a frame into the output (its size checked by _admit; route
  // valid; body a Buffer) and see that it is written this tick.
  _put(kind, route, id, status, body) {
    const rl = route.length;
    const size = HEADER_LEN + rl + body.length;
    const b = this._room(size);
    const o = this._chunkLen;
    b[o] = size & 0xff;
    b[o + 1] = (size >>> 8) & 0xff;
    b[o + 2] = (size >>> 16) & 0xff;
    b[o + 3] = size >>> 24;
    b[o + 4] = codec.VERSION;
    b[o + 5] = kind;
    b[o + 6] = rl;
    b[o + 7] = 0;
    b[o + 8] = id & 0xff;
    b[o + 9] = (id >>> 8) & 0xff;
    b[o + 10] = (id >>> 16) & 0xff;
    b[o + 11] = id >>> 24;
    b[o + 12] = status & 0xff;
    b[o + 13] = (status >>> 8) & 0xff;
    b[o + 14] = (status >>> 16) & 0xff;
    b[o + 15] = status >>> 24;
    for (let i = 0; i < rl; i++) b[o + HEADER_LEN + i] = route.charCodeAt(i);
    if (body.length > 0) body.copy(b, o + HEADER_LEN + rl);
    this._chunkLen = o + size;
    this._outBytes += size;
    if (!this._flushScheduled) {
      this._flushScheduled = true;
      setImmediate(() => this._flush());
    }
  }

  // Everything queued, as one Buffer (null when nothing is), and the
  // queue emptied.
  _takeOutput() {
    if (this._outBytes === 0) return null;
    let data;
    const tail = this._chunkLen > this._chunkStart ? this._chunk.subarray(this._chunkStart, this._chunkLen) : null;
    if (this._out.length === 0) {
      data = tail;
    } else {
      if (tail) this._out.push(tail);
      data = this._out.length === 1 ? this._out[0] : Buffer.concat(this._out, this._outBytes);
    }
    this._out = [];
    this._outBytes = 0;
    // The rest of the chunk takes the next frames: write() keeps only the
    // part it was given.
    this._chunkStart = this._chunkLen;
    return data;
  }

  _dropOutput() {
    this._out = [];
    this._outBytes = 0;
    this._chunk = null;
    this._chunkStart = this._chunkLen = 0;
  }

  // Everything queued leaves in one write; after write() said false, wait
  // for 'drain'.
  _flush() {
    this._flushScheduled = false;
    if (this._state !== 'open' || this._draining || this._outBytes === 0) return;
    const data = this._takeOutput();
    if (!this._socket.write(data)) this._draining = true;
  }

  _sendError(id, status, message) {
    if (this._state !== 'open') return;
    if (!Number.isInteger(status) || status < 1 || status > 0xffffffff) status = CODES.INTERNAL;
    this._put(KIND.ERROR, '', id, status, cutUtf8(message, ERROR_MSG_MAX));
  }

  _allocId() {
    for (;;) {
      const id = this._nextId;
      this._nextId = id >= 0xffffffff ? 1 : id + 1;
      if (id !== 0 && !this._pending.has(id)) return id;
    }
  }

  // ---- calls --------------------------------------------------------------

  /**
   * Send a REQUEST and resolve to the REPLY's payload (a Buffer). Rejects
   * with PipehubError for an ERROR answer, code ETIMEDOUT after timeoutMs,
   * AbortError when signal aborts, ECLOSED / ECONNRESET / EPROTO when the
   * connection ends first, PipehubError BUSY when the outgoing queue is full.
   */
  call(route, payload, options) {
    let timeoutMs = DEFAULT_CALL_TIMEOUT;
    let signal;
    let body;
    try {
      if (options) {
        if (options.timeoutMs !== undefined) timeoutMs = options.timeoutMs;
        signal = options.signal;
      }
      if (timeoutMs !== DEFAULT_CALL_TIMEOUT) timeoutMs = checkTimeout(timeoutMs, 'timeoutMs');
      checkRoute(route, 'route');
      body = toBuffer(payload);
      const stateErr = this._stateError();
      if (stateErr) throw stateErr;
      if (signal && signal.aborted) throw abortError(signal);
      const refused = this._admit(frameSize(route.length, body.length));
      if (refused) throw refused;
    } catch (err) {
      return Promise.reject(err);
    }
    let call;
    const promise = new Promise((resolve, reject) => { call = new PendingCall(route, timeoutMs, resolve, reject); });
    const id = this._allocId();
    call.id = id;
    let list = this._deadlines.get(timeoutMs);
    if (!list) {
      list = new DeadlineList(this, timeoutMs);
      this._deadlines.set(timeoutMs, list);
    }
    list.add(call);
    if (signal) {
      call.signal = signal;
      call.onAbort = () => {
        if (this._pending.get(id) !== call) return;
        this._pending.delete(id);
        this._forget(call);
        call.reject(abortError(signal));
      };
      signal.addEventListener('abort', call.onAbort, { once: true });
    }
    this._pending.set(id, call);
    this._put(KIND.REQUEST, route, id, 0, body);
    return promise;
  }

  // Take a call off its deadline list and its signal.
  _forget(call) {
    if (call.list) call.list.remove(call);
    if (call.onAbort) {
      call.signal.removeEventListener('abort', call.onAbort);
      call.onAbort = null;
      call.signal = null;
    }
  }

  // Its deadline passed (from its DeadlineList).
  _expire(call) {
    this._forget(call);
    if (this._pending.get(call.id) !== call) return;
    this._pending.delete(call.id);
    call.reject(localError('ETIMEDOUT', `call to '${call.route}' timed out after ${call.ms} ms`));
  }

  /**
   * Publish an EVENT on topic. Synchronous: throws PipehubError BUSY when
   * the outgoing queue is full, FORBIDDEN for a sys. topic, ECLOSED /
   * ECONNRESET when not connected.
   */
  publish(topic, payload) {
    checkRoute(topic, 'topic');
    if (topic.startsWith('sys.')) throw new PipehubError('FORBIDDEN', `topic '${topic}' belongs to the hub`);
    const body = toBuffer(payload);
    const stateErr = this._stateError();
    if (stateErr) throw stateErr;
    const refused = this._admit(frameSize(topic.length, body.length));
    if (refused) throw refused;
    this._put(KIND.EVENT, topic, 0, 0, body);
  }

  /** sys.routes, parsed. */
  async routes(options) { return parseJson(await this.call('sys.routes', undefined, options)); }

  /** sys.stats, parsed. */
  async stats(options) { return parseJson(await this.call('sys.stats', undefined, options)); }

  // ---- input --------------------------------------------------------------

  // One frame from the decoder: buf[off, off + len). Answers to calls are
  // taken from the bytes without a frame object.
  _onFrameAt(buf, off, len) {
    if (this._rxGen !== this._gen) return; // its connection is gone
    const kind = buf[off + 5];
    if (kind === KIND.REPLY || kind === KIND.ERROR) {
      const id = (buf[off + 8] | (buf[off + 9] << 8) | (buf[off + 10] << 16)) + buf[off + 11] * 0x1000000;
      const start = off + HEADER_LEN + buf[off + 6];
      if (id === 0) {
        if (kind === KIND.ERROR) {
          const e = new PipehubError(buf.readUInt32LE(off + 12), buf.toString('utf8', start, off + len));
          this.lastServerError = e;
          if (this.listenerCount('serverError') > 0) this.emit('serverError', e);
        }
        return;
      }
      const p = this._pending.get(id);
      if (p === undefined) return; // late (timed out, aborted) or unknown: dropped
      this._pending.delete(id);
      if (p.list) p.list.remove(p);
      if (p.onAbort) this._forget(p);
      if (kind === KIND.REPLY) p.resolve(buf.subarray(start, off + len));
      else p.reject(new PipehubError(buf.readUInt32LE(off + 12), buf.toString('utf8', start, off + len)));
      return;
    }
    const f = parseFrame(buf, off, len);
    if (kind === KIND.EVENT) this._onEvent(f.route, f.payload);
    else if (kind === KIND.REQUEST) this._onRequest(f);
  }

  _onEvent(topic, payload) {
    const gen = this._gen;
    for (const entry of [...this._subs.values()]) {
      if (!matches(entry.pattern, topic)) continue;
      for (const sub of [...entry.active]) {
        if (sub._done) continue;
        try {
          sub._fn(topic, payload);
        } catch (err) {
          this._listenerError(err);
        }
      }
    }
    if (topic === 'sys.shutdown' && gen === this._gen) {
      this._lost(localError('ECONNRESET', 'pipehub server stopping: ' + payload.toString('utf8')));
    }
  }

  _listenerError(err) {
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else process.nextTick(() => { throw err; });
  }

  _matchRegistration(route) {
    const exact = this._regs.get(route);
    if (exact && !exact._done) return exact;
    let best = null;
    for (const reg of this._regs.values()) {
      if (reg._done || !reg.route.endsWith('.*')) continue;
      if (matches(reg.route, route) && (!best || reg.route.length > best.route.length)) best = reg;
    }
    return best;
  }

  _onRequest(f) {
    const gen = this._gen;
    const id = f.id;
    const reg = this._matchRegistration(f.route);
    if (!reg) {
      this._sendError(id, CODES.NO_ROUTE, `no handler for '${f.route}' on this client`);
      return;
    }
    const req = new Request(this, f);
    let p;
    try {
      p = Promise.resolve(reg.handler(req));
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then((value) => {
      if (gen !== this._gen || this._state !== 'open') return; // its connection is gone
      let body;
      try {
        body = toBuffer(value);
      } catch (err) {
        this._sendError(id, CODES.INTERNAL, `handler of '${f.route}' returned ${typeof value}`);
        return;
      }
      const refused = this._admit(frameSize(0, body.length));
      if (refused) { this._sendError(id, refused.status, refused.message); return; }
      this._put(KIND.REPLY, '', id, 0, body);
    }, (err) => {
      if (gen !== this._gen || this._state !== 'open') return;
      if (err instanceof PipehubError) this._sendError(id, err.status, err.message);
      else this._sendError(id, CODES.INTERNAL, (err && err.message) || String(err));
    });
  }

  // ---- publish / subscribe ------------------------------------------------

  /**
   * Call fn(topic, payload) for every event matching pattern (a topic,
   * `prefix.*` or `*`). Reference-counted per pattern: only the first local
   * subscription of a pattern asks the hub.
   */
  async subscribe(pattern, fn, options) {
    if (!isPattern(pattern)) throw new TypeError(`bad pattern ${JSON.stringify(pattern)}`);
    if (typeof fn !== 'function') throw new TypeError('subscribe needs a callback');
    let entry = this._subs.get(pattern);
    if (!entry) {
      const stateErr = this._stateError();
      if (stateErr) throw stateErr;
      const e = { pattern, count: 0, active: new Set(), ready: null };
      e.ready = LISTEN_ONLY.has(pattern)
        ? Promise.resolve()
        : this.call('sys.subscribe', pattern, options).then(() => {});
      e.ready.catch(() => { if (this._subs.get(pattern) === e) this._subs.delete(pattern); });
      this._subs.set(pattern, e);
      entry = e;
    }
    entry.count++;
    try {
      await entry.ready;
    } catch (err) {
      entry.count--;
      throw err;
    }
    const sub = new Subscription(this, entry, fn);
    entry.active.add(sub);
    return sub;
  }

  async _unsubscribe(sub, options) {
    if (sub._done) return;
    sub._done = true;
    const entry = sub._entry;
    entry.active.delete(sub);
    entry.count--;
    if (entry.count > 0 || this._subs.get(entry.pattern) !== entry) return;
    this._subs.delete(entry.pattern);
    if (LISTEN_ONLY.has(entry.pattern) || this._state !== 'open') return;
    await this.call('sys.unsubscribe', entry.pattern, options);
  }

  /**
   * Events matching pattern as an async iterator of { topic, payload }.
   * Ends when the loop breaks, signal aborts (the iterator then throws an
   * AbortError) or the hub closes; at most maxQueued events wait unread
   * (then it throws PipehubError BUSY).
   */
  events(pattern, { signal, maxQueued = 10000 } = {}) {
    const queue = [];
    let waiter = null;
    let done = false;
    let error = null;
    let subP = null;
    const hub = this;
    const finish = (err) => {
      if (done) return;
      done = true;
      error = err || null;
      queue.length = err ? 0 : queue.length;
      hub._iterators.delete(finish);
      if (signal) signal.removeEventListener('abort', onAbort);
      if (subP) subP.then((s) => s.unsubscribe()).catch(() => {});
      if (waiter) {
        const w = waiter;
        waiter = null;
        if (error) { const e = error; error = null; w.reject(e); } else w.resolve({ value: undefined, done: true });
      }
    };
    const onAbort = () => finish(abortError(signal));
    const iterator = {
      next() {
        if (queue.length > 0) return Promise.resolve({ value: queue.shift(), done: false });
        if (done) {
          if (error) { const e = error; error = null; return Promise.reject(e); }
          return Promise.resolve({ value: undefined, done: true });
        }
        return new Promise((resolve, reject) => { waiter = { resolve, reject }; });
      },
      return() {
        finish(null);
        queue.length = 0;
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]() { return this; },
    };
    if (signal && signal.aborted) {
      finish(abortError(signal));
      return iterator;
    }
    if (signal) signal.addEventListener('abort', onAbort, { once: true });
    this._iterators.add(finish);
    subP = this.subscribe(pattern, (topic, payload) => {
      if (done) return;
      if (waiter) {
        const w = waiter;
        waiter = null;
        w.resolve({ value: { topic, payload }, done: false });
      } else if (queue.length >= maxQueued) {
        finish(new PipehubError('BUSY', `events('${pattern}'): more than ${maxQueued} events unread`));
      } else {
        queue.push({ topic, payload });
      }
    });
    subP.catch((err) => finish(err));
    return iterator;
  }

  _endIterators(err) {
    for (const finish of [...this._iterators]) finish(err);
  }

  _ensureRouteEvents() {
    if (this._routeSub || this._state !== 'open') return;
    this._routeSub = this.subscribe('sys.route.*', (topic, payload) => {
      const route = payload.toString('utf8');
      if (topic === 'sys.route.up') this.emit('route.up', route);
      else if (topic === 'sys.route.down') this.emit('route.down', route);
      else if (topic === 'sys.route.acquired') this.emit('route.acquired', route);
    });
    this._routeSub.catch(() => { this._routeSub = null; });
  }

  // ---- serving routes -----------------------------------------------------

  /**
   * Serve route (a name or `prefix.*`): handler(req) resolves to the REPLY's
   * payload; a thrown PipehubError answers with that ERROR, anything else
   * thrown with INTERNAL.
   */
  async register(route, handler, { exclusive = false, description, timeoutMs } = {}) {
    if (!isPattern(route) || route === '*') throw new TypeError(`bad route ${JSON.stringify(route)}`);
    if (typeof handler !== 'function') throw new TypeError('register needs a handler');
    if (description !== undefined && description !== null) {
      if (typeof description !== 'string') throw new TypeError('description must be a string');
      if (Buffer.byteLength(description, 'utf8') > DESCRIBE_MAX) {
        throw new RangeError(`description over ${DESCRIBE_MAX} bytes`);
      }
    }
    if (this._regs.has(route)) throw localError('EEXIST', `route '${route}' is already registered on this connection`);
    const stateErr = this._stateError();
    if (stateErr) throw stateErr;
    const reg = new Registration(this, route, handler, Boolean(exclusive), description || '');
    this._regs.set(route, reg);
    try {
      reg.state = parseJsonSafe(await this.call('sys.register', reg._payload(), timeoutMs ? { timeoutMs } : undefined));
    } catch (err) {
      if (this._regs.get(route) === reg) this._regs.delete(route);
      reg._done = true;
      throw err;
    }
    return reg;
  }

  async _unregister(reg, options) {
    if (reg._done) return;
    reg._done = true;
    if (this._regs.get(reg.route) === reg) this._regs.delete(reg.route);
    if (this._state !== 'open') return;
    await this.call('sys.unregister', reg.route, options);
  }
}

function parseJsonSafe(buf) {
  try { return parseJson(buf); } catch { return null; }
}

function reconnectConfig(r) {
  if (!r) return null;
  const o = typeof r === 'object' ? r : {};
  return {
    initialDelayMs: o.initialDelayMs > 0 ? o.initialDelayMs : 100,
    maxDelayMs: o.maxDelayMs > 0 ? o.maxDelayMs : 5000,
    maxAttempts: o.maxAttempts > 0 ? o.maxAttempts : Infinity,
  };
}

/**
 * Connect to pipehubd.
 *   pipe: a bare name ('pipehub') or a \\.\pipe\ path.
 *   timeoutMs: how long to retry while the pipe is busy or not there yet.
 *   name: sent with sys.hello (hub.hello gets the reply).
 *   reconnect: true or { initialDelayMs, maxDelayMs, maxAttempts }.
 *   maxQueuedBytes: cap on queued outgoing bytes (default 64 MiB).
 *   path: FOR TESTS: a socket path used instead of the pipe (Unix socket).
 */
async function connect(options = {}) {
  const {
    pipe = 'pipehub', timeoutMs = 5000, name, reconnect = false,
    maxQueuedBytes = DEFAULT_MAX_QUEUED, path,
  } = options;
  const ms = checkTimeout(timeoutMs, 'timeoutMs');
  const target = path !== undefined ? path : pipePath(pipe);
  if (name !== undefined && typeof name !== 'string') throw new TypeError('name must be a string');
  const sock = await openSocket(target, ms);
  const hub = new Hub({
    path: target, name, timeoutMs: ms, reconnect: reconnectConfig(reconnect),
    maxQueuedBytes: Math.max(0, maxQueuedBytes),
  });
  hub._attach(sock);
  if (name !== undefined) {
    try {
      await hub._hello(ms);
    } catch (err) {
      await hub.close();
      throw err;
    }
  }
  return hub;
}

module.exports = {
  connect, Hub, PipehubError, AbortError, Subscription, Registration, Request,
  CODES, codeName, pipePath, matches, codec,
};
