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
 * feed(chunk, onFrame, thisArg) is the same without the objects: it calls
 * onFrame.call(thisArg, buf, off, len) for each frame completed by chunk,
 * the frame being buf[off, off + len) (header checked, route bytes
 * checked); buf may be chunk itself, so a payload kept past the call must
 * be a subarray or a copy, as push() makes. Both stop on a malformed frame:
 * they throw a FrameError (code 'EPROTO'), push() with the frames decoded
 * from this chunk before the bad one in its `frames` property; the
 * decoder then stays failed (every later call throws the same error). An
 * exception thrown by onFrame goes to the caller and leaves the decoder as
 * it was after that frame.
 * frame_len is checked as soon as its four bytes arrive, the rest of the
 * header as soon as its 16 bytes arrive: nothing of the body is buffered
 * for a frame that is refused.
 */
class Decoder {
  constructor({ maxFrame = MAX_FRAME } = {}) {
    this.maxFrame = maxFrame;
    this._chunks = [];
    this._off = 0;      // bytes of _chunks[0] already consumed
    this._len = 0;      // bytes held in _chunks, past _off
    this._need = 0;     // frame_len of the frame whose header was checked
    this.error = null;
  }

  /** Bytes held, waiting for the rest of a frame. */
  get buffered() { return this._len; }

  push(chunk) {
    if (this.error) throw this.error;
    const frames = [];
    try {
      this.feed(chunk, function (buf, off, len) { frames.push(parseFrame(buf, off, len)); });
    } catch (err) {
      if (err === this.error) err.frames = frames;
      throw err;
    }
    return frames;
  }

  feed(chunk, onFrame, thisArg) {
    if (this.error) throw this.error;
    if (!(chunk instanceof Uint8Array)) throw new TypeError('chunk must be a Buffer');
    if (!Buffer.isBuffer(chunk)) chunk = toBuffer(chunk);
    if (chunk.length > 0) {
      this._chunks.push(chunk);
      this._len += chunk.length;
    }
    for (;;) {
      let buf, off;
      const n = this._need;
      if (n === 0) {
        if (this._len < 4) return;
        try {
          this._checkNext();
        } catch (err) {
          this._fail(err);
          throw err;
        }
        if (this._need === 0) return; // the header is not complete yet
        continue;
      }
      if (this._len < n) return;
      const first = this._chunks[0];
      if (first.length - this._off >= n) {
        buf = first;
        off = this._off;
        this._off += n;
        if (this._off === first.length) {
          this._chunks.shift();
          this._off = 0;
        }
      } else {
        buf = this._merge(n);
        off = 0;
      }
      this._len -= n;
      this._need = 0;
      const routeLen = buf[off + 6];
      const bad = routeLen === 0 ? -1 : badRouteByte(buf, off + HEADER_LEN, off + HEADER_LEN + routeLen);
      if (bad >= 0) {
        const err = new FrameError(`bad frame: route byte 0x${buf[off + HEADER_LEN + bad].toString(16).padStart(2, '0')} at ${bad} outside A-Za-z0-9._-/`);
        this._fail(err);
        throw err;
      }
      onFrame.call(thisArg, buf, off, n);
    }
  }

  // Check the header at the front (its frame_len as soon as 4 bytes are
  // there, the rest at 16); set _need when the whole header passed.
  _checkNext() {
    const first = this._chunks[0];
    const have = Math.min(this._len, HEADER_LEN);
    let head = first;
    let at = this._off;
    if (first.length - at < have) {
      head = this._peek(have);
      at = 0;
    }
    const frameLen = head.readUInt32LE(at);
    if (frameLen < HEADER_LEN) {
      throw new FrameError(`bad frame: frame_len ${frameLen} < ${HEADER_LEN}`);
    }
    if (frameLen > this.maxFrame) {
      throw new FrameError(`frame too large: frame_len ${frameLen} exceeds max frame ${this.maxFrame}`);
    }
    if (have < HEADER_LEN) return;
    checkHeader(head, at, frameLen);
    this._need = frameLen;
  }

  _fail(err) {
    this.error = err;
    this._chunks = [];
    this._off = 0;
    this._len = 0;
  }

  // The first n bytes (n <= _len, n <= 16) as one contiguous Buffer,
  // without consuming them.
  _peek(n) {
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    let from = this._off;
    for (const c of this._chunks) {
      const k = Math.min(c.length - from, n - off);
      c.copy(out, off, from, from + k);
      off += k;
      from = 0;
      if (off === n) break;
    }
    return out;
  }

  // Remove the first n bytes (n <= _len, more than _chunks[0] holds) and
  // return them as one Buffer.
  _merge(n) {
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this._chunks[0];
      const k = Math.min(c.length - this._off, n - off);
      c.copy(out, off, this._off, this._off + k);
      off += k;
      if (this._off + k === c.length) {
        this._chunks.shift();
        this._off = 0;
      } else {
        this._off += k;
      }
    }
    return out;
  }
}

function checkHeader(h, at, frameLen) {
  const version = h[at + 4];
  const kind = h[at + 5];
  const routeLen = h[at + 6];
  const flags = h[at + 7];
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

/** The frame buf[off, off + len) (checked by the Decoder) as an object. */
function parseFrame(buf, off = 0, len = buf.length - off) {
  const routeLen = buf[off + 6];
  return {
    kind: buf[off + 5],
    flags: buf[off + 7],
    id: buf.readUInt32LE(off + 8),
    status: buf.readUInt32LE(off + 12),
    route: routeLen === 0 ? '' : buf.toString('latin1', off + HEADER_LEN, off + HEADER_LEN + routeLen),
    payload: buf.subarray(off + HEADER_LEN + routeLen, off + len),
  };
}

module.exports = {
  HEADER_LEN, VERSION, ROUTE_MAX, MAX_FRAME, KIND, KIND_NAMES, FLAG_LANE,
  FrameError, Decoder, encode, frameSize, toBuffer, isValidRoute, parseFrame,
};
