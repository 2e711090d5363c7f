'use strict';
// pipehub wire protocol v1 codec (docs/PROTOCOL.md): encode() and a
// streaming, bounded Decoder. Any split of the input gives the same frames.

const HEADER_LEN = 16;
const VERSION = 1;
const ROUTE_MAX = 255;
const MAX_FRAME = 64 * 1024 * 1024; // as the C client library (client.c)

const KIND = Object.freeze({ REQUEST: 1, REPLY: 2, EVENT: 3, ERROR: 4 });
const KIND_NAMES = ['', 'REQUEST', 'REPLY', 'EVENT', 'ERROR'];
const FLAG_LANE = 0x01;

/** A frame broke the wire format. code 'EPROTO'. */
class FrameError extends Error {
  constructor(message) {
    super(message);
    this.name = 'FrameError';
    this.code = 'EPROTO';
  }
}

// A-Za-z0-9 . _ - /
function isRouteByte(c) {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) ||
         (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x5f ||
         c === 0x2d || c === 0x2f;
}

/** Index of the first byte outside the route characters, or -1. */
function badRouteByte(buf, start, end) {
  for (let i = start; i < end; i++) if (!isRouteByte(buf[i])) return i - start;
  return -1;
}

function isValidRoute(route) {
  if (typeof route !== 'string' || route.length > ROUTE_MAX) return false;
  for (let i = 0; i < route.length; i++) {
    if (!isRouteByte(route.charCodeAt(i))) return false;
  }
  return true;
}

/** Payload (Buffer | Uint8Array | string | undefined | null) as a Buffer. */
function toBuffer(payload) {
  if (payload === undefined || payload === null) return Buffer.alloc(0);
  if (Buffer.isBuffer(payload)) return payload;
  if (payload instanceof Uint8Array) {
    return Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  }
  if (typeof payload === 'string') return Buffer.from(payload, 'utf8');
  throw new TypeError('payload must be a Buffer, Uint8Array, string or undefined');
}

/** Bytes a frame with this route and payload occupies on the wire. */
function frameSize(routeLen, payloadLen) {
  return HEADER_LEN + routeLen + payloadLen;
}

/**
 * Encode { kind, route = '', id = 0, status = 0, payload } into one Buffer.
 * Throws TypeError / RangeError on a bad frame; the size is checked against
 * maxFrame before anything is allocated.
 */
function encode(frame, maxFrame = MAX_FRAME) {
  const kind = frame.kind;
  if (!Number.isInteger(kind) || kind < 1 || kind > 4) {
    throw new TypeError(`kind ${kind} not 1..4`);
  }
  const route = frame.route === undefined ? '' : frame.route;
  if (!isValidRoute(route)) {
    throw new TypeError(`bad route ${JSON.stringify(route)}: at most 255 of A-Za-z0-9._-/`);
  }
  if (route.length === 0 && (kind === KIND.REQUEST || kind === KIND.EVENT)) {
    throw new TypeError(`a ${KIND_NAMES[kind]} needs a route`);
  }
  const id = frame.id === undefined ? 0 : frame.id;
  const status = frame.status === undefined ? 0 : frame.status;
  if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw new RangeError(`bad id ${id}`);
  if (!Number.isInteger(status) || status < 0 || status > 0xffffffff) {
    throw new RangeError(`bad status ${status}`);
  }
  const payload = toBuffer(frame.payload);
  const len = frameSize(route.length, payload.length);
  if (len > maxFrame) throw new RangeError(`frame of ${len} bytes exceeds max frame ${maxFrame}`);
  const buf = Buffer.allocUnsafe(len);
  buf.writeUInt32LE(len, 0);
  buf[4] = VERSION;
  buf[5] = kind;
  buf[6] = route.length;
  buf[7] = 0;
  buf.writeUInt32LE(id, 8);
  buf.writeUInt32LE(status, 12);
  buf.write(route, HEADER_LEN, 'latin1');
  payload.copy(buf, HEADER_LEN + route.length);
  return buf;
}

/**
 * Streaming decoder. push(chunk) returns the frames completed by chunk:
 * { kind, flags, id, status, route (string), payload (Buffer) }.
 * A malformed header throws a FrameError (code 'EPROTO') whose `frames`
 * property holds the frames decoded from this chunk before the bad one; the
 * decoder then stays failed (every later push throws the same error).
 * frame_len is checked as soon as its four bytes arrive, the rest of the
 * header as soon as its 16 bytes arrive: nothing of the body is buffered
 * for a frame that is refused.
 */
class Decoder {
  constructor({ maxFrame = MAX_FRAME } = {}) {
    this.maxFrame = maxFrame;
    this._chunks = [];
    this._len = 0;      // bytes held in _chunks
    this._need = 0;     // frame_len of the frame whose header was checked
    this.error = null;
  }

  /** Bytes held, waiting for the rest of a frame. */
  get buffered() { return this._len; }

  push(chunk) {
    if (this.error) throw this.error;
    if (!(chunk instanceof Uint8Array)) throw new TypeError('chunk must be a Buffer');
    if (!Buffer.isBuffer(chunk)) chunk = toBuffer(chunk);
    if (chunk.length > 0) {
      this._chunks.push(chunk);
      this._len += chunk.length;
    }
    const frames = [];
    try {
      for (;;) {
        if (this._need === 0) {
          if (this._len < 4) break;
          const head = this._peek(Math.min(this._len, HEADER_LEN));
          const frameLen = head.readUInt32LE(0);
          if (frameLen < HEADER_LEN) {
            throw new FrameError(`bad frame: frame_len ${frameLen} < ${HEADER_LEN}`);
          }
          if (frameLen > this.maxFrame) {
            throw new FrameError(`frame too large: frame_len ${frameLen} exceeds max frame ${this.maxFrame}`);
          }
          if (head.length < HEADER_LEN) break;
          checkHeader(head, frameLen);
          this._need = frameLen;
        }
        if (this._len < this._need) break;
        const buf = this._take(this._need);
        this._need = 0;
        frames.push(parseFrame(buf));
      }
    } catch (err) {
      this.error = err;
      this._chunks = [];
      this._len = 0;
      err.frames = frames;
      throw err;
    }
    return frames;
  }

  // The first n bytes (n <= _len) as one contiguous Buffer, without
  // consuming them (n is at most 16 here, so merging is cheap).
  _peek(n) {
    if (this._chunks[0].length >= n) return this._chunks[0].subarray(0, n);
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    for (const c of this._chunks) {
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      if (off === n) break;
    }
    return out;
  }

  // Remove and return the first n bytes (n <= _len).
  _take(n) {
    const first = this._chunks[0];
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this._chunks.shift();
      else this._chunks[0] = first.subarray(n);
      this._len -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this._chunks[0];
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      if (k === c.length) this._chunks.shift();
      else this._chunks[0] = c.subarray(k);
    }
    this._len -= n;
    return out;
  }
}

function checkHeader(h, frameLen) {
  const version = h[4];
  const kind = h[5];
  const routeLen = h[6];
  const flags = h[7];
  if (version !== VERSION) throw new FrameError(`bad frame: version ${version} != ${VERSION}`);
  if (kind < 1 || kind > 4) throw new FrameError(`bad frame: kind ${kind} not 1..4`);
  if (flags !== 0) {
    throw new FrameError(flags & FLAG_LANE
      ? `bad frame: flags 0x${flags.toString(16).padStart(2, '0')} (shared-memory lane frames are not supported by this client)`
      : `bad frame: flags 0x${flags.toString(16).padStart(2, '0')} != 0`);
  }
  if (HEADER_LEN + routeLen > frameLen) {
    throw new FrameError(`bad frame: route_len ${routeLen} past frame_len ${frameLen}`);
  }
  if (routeLen === 0 && (kind === KIND.REQUEST || kind === KIND.EVENT)) {
    throw new FrameError(`bad frame: empty route in ${KIND_NAMES[kind]}`);
  }
}

function parseFrame(buf) {
  const routeLen = buf[6];
  const bad = badRouteByte(buf, HEADER_LEN, HEADER_LEN + routeLen);
  if (bad >= 0) {
    throw new FrameError(`bad frame: route byte 0x${buf[HEADER_LEN + bad].toString(16).padStart(2, '0')} at ${bad} outside A-Za-z0-9._-/`);
  }
  return {
    kind: buf[5],
    flags: buf[7],
    id: buf.readUInt32LE(8),
    status: buf.readUInt32LE(12),
    route: buf.toString('latin1', HEADER_LEN, HEADER_LEN + routeLen),
    payload: buf.subarray(HEADER_LEN + routeLen),
  };
}

module.exports = {
  HEADER_LEN, VERSION, ROUTE_MAX, MAX_FRAME, KIND, KIND_NAMES, FLAG_LANE,
  FrameError, Decoder, encode, frameSize, toBuffer, isValidRoute,
};
