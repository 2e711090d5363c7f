'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { encode, Decoder, KIND, FrameError, MAX_FRAME } = require('../lib/codec');

function header({ len, version = 1, kind = 1, routeLen = 0, flags = 0, id = 0, status = 0 }) {
  const h = Buffer.alloc(16);
  h.writeUInt32LE(len, 0);
  h[4] = version; h[5] = kind; h[6] = routeLen; h[7] = flags;
  h.writeUInt32LE(id, 8);
  h.writeUInt32LE(status, 12);
  return h;
}

function simple(f) {
  return { kind: f.kind, flags: f.flags, id: f.id, status: f.status, route: f.route, payload: f.payload.toString('hex') };
}

test('encode matches the PROTOCOL.md example', () => {
  const buf = encode({ kind: KIND.REQUEST, route: 'sys.echo', id: 7, payload: 'hi' });
  assert.equal(buf.toString('hex'), '1a000000010108000700000000000000' + Buffer.from('sys.echohi').toString('hex'));
  const reply = encode({ kind: KIND.REPLY, id: 7, payload: Buffer.from('hi') });
  assert.equal(reply.toString('hex'), '12000000010200000700000000000000' + Buffer.from('hi').toString('hex'));
});

test('encode/decode round trip of every kind', () => {
  const frames = [
    { kind: KIND.REQUEST, route: 'billing.get/x_y-z', id: 0xffffffff, status: 42, payload: Buffer.from([0, 1, 2, 255]) },
    { kind: KIND.REPLY, route: '', id: 1, status: 0, payload: Buffer.alloc(0) },
    { kind: KIND.EVENT, route: 't', id: 0, status: 0, payload: Buffer.from('héllo') },
    { kind: KIND.ERROR, route: '', id: 9, status: 300, payload: Buffer.from('nope') },
  ];
  const d = new Decoder();
  const out = d.push(Buffer.concat(frames.map((f) => encode(f))));
  assert.equal(out.length, 4);
  out.forEach((f, i) => {
    assert.equal(f.kind, frames[i].kind);
    assert.equal(f.route, frames[i].route);
    assert.equal(f.id, frames[i].id);
    assert.equal(f.status, frames[i].status);
    assert.equal(f.flags, 0);
    assert.deepEqual(Buffer.from(f.payload), frames[i].payload);
  });
  assert.equal(d.buffered, 0);
  // Uint8Array and string payloads
  const u = new Decoder().push(encode({ kind: KIND.EVENT, route: 'a', payload: new Uint8Array([5, 6]) }));
  assert.deepEqual([...u[0].payload], [5, 6]);
});

test('encode refuses bad frames', () => {
  assert.throws(() => encode({ kind: 5, route: 'a' }), /kind 5/);
  assert.throws(() => encode({ kind: KIND.REQUEST, route: '' }), /needs a route/);
  assert.throws(() => encode({ kind: KIND.EVENT, route: 'a b' }), /bad route/);
  assert.throws(() => encode({ kind: KIND.EVENT, route: 'x'.repeat(256) }), /bad route/);
  assert.throws(() => encode({ kind: KIND.REPLY, id: -1 }), /bad id/);
  assert.throws(() => encode({ kind: KIND.REPLY, payload: Buffer.alloc(100) }, 64), /exceeds max frame 64/);
});

test('every split point of a multi-frame buffer gives the same frames', () => {
  const frames = [
    { kind: KIND.REQUEST, route: 'echo', id: 1, payload: 'abc' },
    { kind: KIND.REPLY, id: 2 },
    { kind: KIND.EVENT, route: 'topic.a', payload: Buffer.alloc(40, 7) },
    { kind: KIND.ERROR, id: 3, status: 3, payload: "no route 'x'" },
    { kind: KIND.REQUEST, route: 'r', id: 4, status: 99 },
  ];
  const all = Buffer.concat(frames.map((f) => encode(f)));
  const want = new Decoder().push(all).map(simple);
  assert.equal(want.length, 5);
  for (let i = 0; i <= all.length; i++) {
    for (let j = i; j <= all.length; j++) {
      const d = new Decoder();
      const got = [
        ...d.push(all.subarray(0, i)),
        ...d.push(all.subarray(i, j)),
        ...d.push(all.subarray(j)),
      ].map(simple);
      assert.deepEqual(got, want, `split at ${i},${j}`);
      assert.equal(d.buffered, 0);
    }
  }
  // byte by byte
  const d = new Decoder();
  const got = [];
  for (let i = 0; i < all.length; i++) got.push(...d.push(all.subarray(i, i + 1)));
  assert.deepEqual(got.map(simple), want);
});

test('each malformed header is refused with a clear message', () => {
  const cases = [
    [header({ len: 15 }), /frame_len 15 < 16/],
    [header({ len: 16, version: 2, kind: 2 }), /version 2 != 1/],
    [header({ len: 16, kind: 0 }), /kind 0 not 1\.\.4/],
    [header({ len: 16, kind: 5 }), /kind 5 not 1\.\.4/],
    [header({ len: 16, kind: 2, flags: 1 }), /flags 0x01.*shared-memory lane/],
    [header({ len: 16, kind: 2, flags: 0x80 }), /flags 0x80 != 0/],
    [header({ len: 20, kind: 2, routeLen: 5 }), /route_len 5 past frame_len 20/],
    [header({ len: 16, kind: 1 }), /empty route in REQUEST/],
    [header({ len: 16, kind: 3 }), /empty route in EVENT/],
    [Buffer.concat([header({ len: 19, kind: 1, routeLen: 3 }), Buffer.from('a b')]), /route byte 0x20 at 1 outside/],
    [Buffer.concat([header({ len: 17, kind: 3, routeLen: 1 }), Buffer.from('*')]), /route byte 0x2a at 0/],
  ];
  for (const [buf, re] of cases) {
    const d = new Decoder();
    assert.throws(() => d.push(buf), (err) => {
      assert.ok(err instanceof FrameError, 'FrameError');
      assert.equal(err.code, 'EPROTO');
      assert.match(err.message, re);
      return true;
    });
    // stays failed
    assert.throws(() => d.push(Buffer.alloc(0)), re);
  }
});

test('frames before a malformed one are handed over with the error', () => {
  const good = encode({ kind: KIND.REPLY, id: 5, payload: 'ok' });
  const d = new Decoder();
  try {
    d.push(Buffer.concat([good, header({ len: 16, version: 9 })]));
    assert.fail('should throw');
  } catch (err) {
    assert.match(err.message, /version 9/);
    assert.equal(err.frames.length, 1);
    assert.equal(err.frames[0].id, 5);
  }
});

test('a too-large frame_len is refused from its 4 bytes, before the body is buffered', () => {
  const d = new Decoder({ maxFrame: 1024 });
  const big = Buffer.alloc(4);
  big.writeUInt32LE(1025, 0);
  assert.throws(() => d.push(big), /frame_len 1025 exceeds max frame 1024/);
  assert.equal(d.buffered, 0);
  // Default max is 64 MiB: 64 MiB + 1 refused with only the header present.
  const d2 = new Decoder();
  assert.equal(d2.maxFrame, MAX_FRAME);
  assert.throws(() => d2.push(header({ len: MAX_FRAME + 1, kind: 2 })), /exceeds max frame 67108864/);
  // exactly the max is fine and waits for its body
  const d3 = new Decoder({ maxFrame: 1024 });
  assert.deepEqual(d3.push(header({ len: 1024, kind: 2 })), []);
  assert.equal(d3.buffered, 16);
  assert.equal(d3.push(Buffer.alloc(1008)).length, 1);
});

test('feed() hands over each frame in place: the same bytes as push(), at every split', () => {
  const frames = [
    { kind: KIND.REPLY, id: 7, payload: 'seven' },
    { kind: KIND.EVENT, route: 'topic.b', payload: Buffer.alloc(30, 9) },
    { kind: KIND.ERROR, id: 8, status: 300, payload: 'app' },
  ];
  const all = Buffer.concat(frames.map((f) => encode(f)));
  const want = frames.map((f) => encode(f).toString('hex'));
  for (let i = 0; i <= all.length; i++) {
    const d = new Decoder();
    const got = [];
    const sink = { seen: got };
    const onFrame = function (buf, off, len) { this.seen.push(buf.toString('hex', off, off + len)); };
    d.feed(all.subarray(0, i), onFrame, sink);
    d.feed(all.subarray(i), onFrame, sink);
    assert.deepEqual(got, want, `split at ${i}`);
    assert.equal(d.buffered, 0);
  }
});

test('feed(): a throw from onFrame goes to the caller; the decoder carries on after that frame', () => {
  const all = Buffer.concat([encode({ kind: KIND.REPLY, id: 1 }), encode({ kind: KIND.REPLY, id: 2 })]);
  const d = new Decoder();
  const ids = [];
  assert.throws(() => d.feed(all, (buf, off) => {
    ids.push(buf.readUInt32LE(off + 8));
    if (ids.length === 1) throw new Error('listener');
  }), /listener/);
  assert.equal(d.error, null);
  d.feed(Buffer.alloc(0), (buf, off) => ids.push(buf.readUInt32LE(off + 8)));
  assert.deepEqual(ids, [1, 2]);
});

test('feed(): a bad route byte is a FrameError after the frames before it', () => {
  const good = encode({ kind: KIND.REPLY, id: 1 });
  const bad = encode({ kind: KIND.EVENT, route: 'ab', payload: 'x' });
  bad[17] = 0x20; // 'b' -> ' '
  const d = new Decoder();
  const ids = [];
  assert.throws(() => d.feed(Buffer.concat([good, bad]), (buf, off) => ids.push(buf.readUInt32LE(off + 8))),
    (err) => err instanceof FrameError && /route byte 0x20 at 1/.test(err.message));
  assert.deepEqual(ids, [1]);
  assert.throws(() => d.push(good), FrameError, 'stays failed');
});
