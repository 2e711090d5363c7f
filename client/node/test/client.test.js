'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { connect, PipehubError } = require('..');
const { KIND, encode } = require('../lib/codec');
const { FakeHub, waitFor, within } = require('./fakehub');

async function setup(t, options = {}) {
  const fake = new FakeHub();
  await fake.listen();
  const hub = await connect({ path: fake.path, timeoutMs: 2000, ...options });
  t.after(async () => {
    await within(hub.close(), 3000, 'hub.close');
    await within(fake.close(), 3000, 'fake.close');
  });
  return { fake, hub };
}

async function rejectsWith(promise, check, ms = 2000) {
  await assert.rejects(within(promise, ms, 'rejection'), check);
}

test('connect: missing socket -> ENOENT after retrying until timeoutMs', async () => {
  const t0 = Date.now();
  await rejectsWith(connect({ path: '/tmp/pipehub-does-not-exist.sock', timeoutMs: 200 }), (err) => {
    assert.equal(err.code, 'ENOENT');
    return true;
  });
  assert.ok(Date.now() - t0 >= 150, 'retried until the timeout');
});

test('connect: a server appearing during the wait is found; name sends sys.hello', async (t) => {
  const fake = new FakeHub();
  const p = connect({ path: fake.path, timeoutMs: 2000, name: 'tester' });
  await new Promise((r) => setTimeout(r, 60));
  await fake.listen();
  const hub = await within(p, 2500, 'connect');
  t.after(async () => { await hub.close(); await fake.close(); });
  assert.equal(hub.hello.client, 'tester');
  assert.equal(hub.hello.max_frame, 1048576);
  assert.equal(fake.conn.frames[0].route, 'sys.hello');
  assert.equal(fake.conn.frames[0].payload.toString(), 'tester');
  // the hello's max_frame now limits outgoing frames, checked locally
  await rejectsWith(hub.call('echo', Buffer.alloc(1048576)), (err) => {
    assert.ok(err instanceof PipehubError);
    assert.equal(err.code, 'TOO_LARGE');
    return true;
  });
});

test('echo call, routes() and stats()', async (t) => {
  const { hub } = await setup(t);
  const r = await within(hub.call('echo', 'hello'));
  assert.ok(Buffer.isBuffer(r));
  assert.equal(r.toString(), 'hello');
  assert.equal((await within(hub.call('echo'))).length, 0);
  assert.deepEqual([...(await within(hub.call('echo', new Uint8Array([1, 2, 3]))))], [1, 2, 3]);
  assert.deepEqual(await within(hub.routes()), [{ route: 'sys.echo', kind: 'builtin' }]);
  assert.equal((await within(hub.stats())).uptime_ms, 5);
});

test('many calls in flight resolve out of order by id', async (t) => {
  const { fake, hub } = await setup(t);
  const N = 50;
  const calls = [];
  for (let i = 0; i < N; i++) calls.push(hub.call('hold', `req-${i}`));
  await waitFor(() => fake.held.length === N, 2000, 'held requests');
  const ids = fake.held.map((f) => f.id);
  assert.equal(new Set(ids).size, N, 'ids unique');
  assert.ok(!ids.includes(0), 'no id 0');
  // answer in reverse order, each with its own request's payload
  for (const f of [...fake.held].reverse()) {
    fake.send(null, { kind: KIND.REPLY, id: f.id, payload: 'ans-' + f.payload.toString() });
  }
  const results = await within(Promise.all(calls));
  results.forEach((r, i) => assert.equal(r.toString(), `ans-req-${i}`));
  assert.equal(hub.pending, 0);
});

test('ids wrap around and skip 0', async (t) => {
  const { fake, hub } = await setup(t);
  hub._nextId = 0xffffffff;
  const a = hub.call('hold', 'a');
  const b = hub.call('hold', 'b');
  await waitFor(() => fake.held.length === 2);
  assert.deepEqual(fake.held.map((f) => f.id), [0xffffffff, 1]);
  for (const f of fake.held) fake.send(null, { kind: KIND.REPLY, id: f.id, payload: f.payload });
  assert.deepEqual((await within(Promise.all([a, b]))).map(String), ['a', 'b']);
});

test('timeout -> ETIMEDOUT, and a late answer is dropped', async (t) => {
  const { fake, hub } = await setup(t);
  const t0 = Date.now();
  await rejectsWith(hub.call('hold', 'x', { timeoutMs: 80 }), (err) => {
    assert.equal(err.code, 'ETIMEDOUT');
    assert.match(err.message, /hold/);
    return true;
  });
  assert.ok(Date.now() - t0 >= 70);
  assert.equal(hub.pending, 0);
  const late = fake.held[0];
  const next = hub.call('hold', 'y');
  await waitFor(() => fake.held.length === 2);
  assert.notEqual(fake.held[1].id, late.id);
  // the late answer arrives first and must not resolve the new call
  fake.send(null, { kind: KIND.REPLY, id: late.id, payload: 'late' });
  fake.send(null, { kind: KIND.REPLY, id: fake.held[1].id, payload: 'fresh' });
  assert.equal((await within(next)).toString(), 'fresh');
});

test('timeouts of several lengths: each rejects after its own, answered calls never, no timer left', async (t) => {
  const { fake, hub } = await setup(t);
  const t0 = Date.now();
  const when = (p) => p.then(() => 'resolved', (err) => {
    assert.equal(err.code, 'ETIMEDOUT');
    return Date.now() - t0;
  });
  const long = when(hub.call('hold', 'a', { timeoutMs: 150 }));
  const short = when(hub.call('hold', 'b', { timeoutMs: 50 }));
  const answered = hub.call('echo', 'c', { timeoutMs: 50 });
  const dflt = hub.call('echo', 'd');
  assert.equal((await within(answered)).toString(), 'c');
  assert.equal((await within(dflt)).toString(), 'd');
  const [tl, ts] = await within(Promise.all([long, short]));
  assert.ok(ts >= 45 && ts < 150, `the 50 ms call rejected after ${ts} ms`);
  assert.ok(tl >= 145, `the 150 ms call rejected after ${tl} ms`);
  assert.equal(hub.pending, 0);
  assert.equal(fake.held.length, 2);
  for (const list of hub._deadlines.values()) assert.equal(list.timer, null, 'no timer without calls');
  // many distinct timeouts: their lists do not pile up once answered
  const calls = [];
  for (let i = 0; i < 50; i++) calls.push(hub.call('echo', `t${i}`, { timeoutMs: 1000 + i }));
  await within(Promise.all(calls));
  assert.ok(hub._deadlines.size <= 9, `${hub._deadlines.size} deadline lists kept`);
});

test('calls answered out of order leave the pending deadlines intact', async (t) => {
  const { fake, hub } = await setup(t);
  const calls = [];
  for (let i = 0; i < 5; i++) calls.push(hub.call('hold', `h${i}`, { timeoutMs: 200 }).then(String, (e) => e.code));
  await waitFor(() => fake.held.length === 5);
  for (const i of [2, 0, 4]) fake.send(null, { kind: KIND.REPLY, id: fake.held[i].id, payload: `r${i}` });
  assert.deepEqual(await within(Promise.all(calls)), ['r0', 'ETIMEDOUT', 'r2', 'ETIMEDOUT', 'r4']);
  assert.equal(hub.pending, 0);
});

test('AbortSignal rejects at once with AbortError and forgets the call', async (t) => {
  const { fake, hub } = await setup(t);
  const ac = new AbortController();
  const p = hub.call('hold', 'x', { signal: ac.signal });
  await waitFor(() => fake.held.length === 1);
  ac.abort();
  await rejectsWith(p, (err) => {
    assert.equal(err.name, 'AbortError');
    return true;
  }, 100);
  assert.equal(hub.pending, 0);
  // already aborted: nothing is sent
  const before = fake.conn.frames.length;
  await rejectsWith(hub.call('echo', 'y', { signal: ac.signal }), { name: 'AbortError' });
  assert.equal((await within(hub.call('echo', 'z'))).toString(), 'z');
  assert.equal(fake.conn.frames.length, before + 1);
});

test('ERROR answers reject with PipehubError code/status', async (t) => {
  const { fake, hub } = await setup(t);
  await rejectsWith(hub.call('nothing.here'), (err) => {
    assert.ok(err instanceof PipehubError);
    assert.equal(err.code, 'NO_ROUTE');
    assert.equal(err.status, 3);
    assert.equal(err.message, "no route 'nothing.here'");
    return true;
  });
  const p = hub.call('hold');
  await waitFor(() => fake.held.length === 1);
  fake.send(null, { kind: KIND.ERROR, id: fake.held[0].id, status: 300, payload: 'app says no' });
  await rejectsWith(p, (err) => {
    assert.ok(err instanceof PipehubError);
    assert.equal(err.code, '300');
    assert.equal(err.status, 300);
    assert.equal(err.message, 'app says no');
    return true;
  });
  const e = new PipehubError('BAD_REQUEST', 'x');
  assert.equal(e.status, 9);
  assert.equal(new PipehubError(7).code, 'TIMEOUT');
  assert.throws(() => new PipehubError('NOPE'), TypeError);
});

test('subscribe is reference-counted per pattern; events fan out locally', async (t) => {
  const { fake, hub } = await setup(t);
  const a = [];
  const b = [];
  const c = [];
  const [s1, s2] = await within(Promise.all([
    hub.subscribe('build.*', (topic, payload) => a.push(`${topic}=${payload}`)),
    hub.subscribe('build.*', (topic, payload) => b.push(`${topic}=${payload}`)),
  ]));
  const s3 = await within(hub.subscribe('*', (topic) => c.push(topic)));
  assert.deepEqual(fake.calls('sys.subscribe'), ['build.*', '*']);
  fake.event('build.done', 'ok');
  fake.event('build', 'no');      // build.* does not match 'build'
  fake.event('other.x', 'no');
  await waitFor(() => c.length === 3, 2000, 'events');
  assert.deepEqual(a, ['build.done=ok']);
  assert.deepEqual(b, ['build.done=ok']);
  assert.deepEqual(c, ['build.done', 'build', 'other.x']);
  await within(s1.unsubscribe());
  assert.deepEqual(fake.calls('sys.unsubscribe'), []);
  await within(s2.unsubscribe());
  await within(s2.unsubscribe()); // twice is a no-op
  assert.deepEqual(fake.calls('sys.unsubscribe'), ['build.*']);
  fake.event('build.more', 'x');
  await waitFor(() => c.length === 4);
  assert.equal(a.length, 1);
  await within(s3.unsubscribe());
  assert.deepEqual(fake.calls('sys.unsubscribe'), ['build.*', '*']);
  // sys.shutdown-like listen-only patterns ask the hub nothing
  const s4 = await within(hub.subscribe('sys.route.acquired', () => {}));
  await within(s4.unsubscribe());
  assert.deepEqual(fake.calls('sys.subscribe'), ['build.*', '*']);
});

test('events() async iterator, ended by abort', async (t) => {
  const { fake, hub } = await setup(t);
  const ac = new AbortController();
  const got = [];
  const loop = (async () => {
    for await (const ev of hub.events('job.*', { signal: ac.signal })) {
      got.push(`${ev.topic}:${ev.payload}`);
      if (got.length === 2) setTimeout(() => ac.abort(), 10);
    }
  })();
  await waitFor(() => fake.calls('sys.subscribe').length === 1);
  assert.deepEqual(fake.calls('sys.subscribe'), ['job.*']);
  fake.event('job.a', '1');
  fake.event('job.b', '2');
  await rejectsWith(loop, { name: 'AbortError' });
  assert.deepEqual(got, ['job.a:1', 'job.b:2']);
  await waitFor(() => fake.calls('sys.unsubscribe').length === 1, 2000, 'unsubscribe');
  assert.deepEqual(fake.calls('sys.unsubscribe'), ['job.*']);
  // break ends it quietly and unsubscribes too
  const it = hub.events('q');
  await waitFor(() => fake.calls('sys.subscribe').length === 2);
  fake.event('q', 'x');
  for await (const ev of it) { assert.equal(ev.topic, 'q'); break; }
  await waitFor(() => fake.calls('sys.unsubscribe').length === 2);
});

test('route.up / route.down listeners subscribe to sys.route.* once', async (t) => {
  const { fake, hub } = await setup(t);
  const ups = [];
  const downs = [];
  hub.on('route.up', (r) => ups.push(r));
  hub.on('route.down', (r) => downs.push(r));
  await waitFor(() => fake.calls('sys.subscribe').length === 1);
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(fake.calls('sys.subscribe'), ['sys.route.*']);
  fake.event('sys.route.up', 'billing.get');
  fake.event('sys.route.down', 'billing.get');
  await waitFor(() => downs.length === 1);
  assert.deepEqual(ups, ['billing.get']);
  assert.deepEqual(downs, ['billing.get']);
});

test('register: handler replies, PipehubError -> that ERROR, other throw -> INTERNAL', async (t) => {
  const { fake, hub } = await setup(t);
  let seenCaller = null;
  const reg = await within(hub.register('calc', async (req) => {
    const text = req.payload.toString();
    if (text === 'who') { seenCaller = await req.caller(); return `caller ${req.callerId}`; }
    if (text === 'app') throw new PipehubError(300, 'app error');
    if (text === 'bad') throw new PipehubError('BAD_REQUEST', 'bad input');
    if (text === 'boom') throw new Error('boom');
    return Buffer.from(`${req.route}:${text}`);
  }, { exclusive: true, description: '# calc\nmethod calc(x: int) -> (y: int)' }));
  assert.deepEqual(fake.calls('sys.register'), ['calc exclusive\n# calc\nmethod calc(x: int) -> (y: int)']);
  await within(hub.register('calc2.*', () => undefined));
  assert.deepEqual(fake.calls('sys.register').slice(1), ['calc2.*']);
  await rejectsWith(hub.register('calc', () => 1), { code: 'EEXIST' });

  const send = (id, route, payload, caller = 5) =>
    fake.send(null, { kind: KIND.REQUEST, route, id, status: caller, payload });
  send(100, 'calc', '2+2');
  send(101, 'calc', 'app');
  send(102, 'calc', 'bad');
  send(103, 'calc', 'boom');
  send(104, 'calc', 'who', 77);
  send(105, 'calc2.sub', 'x');
  send(106, 'unknown', 'x');
  await waitFor(() => fake.answers.length === 7, 2000, 'answers');
  const byId = Object.fromEntries(fake.answers.map((f) => [f.id, f]));
  assert.equal(byId[100].kind, KIND.REPLY);
  assert.equal(byId[100].route, '');
  assert.equal(byId[100].payload.toString(), 'calc:2+2');
  assert.deepEqual([byId[101].kind, byId[101].status, byId[101].payload.toString()], [KIND.ERROR, 300, 'app error']);
  assert.deepEqual([byId[102].kind, byId[102].status, byId[102].payload.toString()], [KIND.ERROR, 9, 'bad input']);
  assert.deepEqual([byId[103].kind, byId[103].status, byId[103].payload.toString()], [KIND.ERROR, 8, 'boom']);
  assert.equal(byId[104].payload.toString(), 'caller 77');
  assert.deepEqual(seenCaller, { conn_id: 77, pid: 4242 });
  assert.deepEqual([byId[105].kind, byId[105].payload.length], [KIND.REPLY, 0]);
  assert.deepEqual([byId[106].kind, byId[106].status], [KIND.ERROR, 3]);

  await within(reg.unregister());
  assert.deepEqual(fake.calls('sys.unregister'), ['calc']);
  send(107, 'calc', 'again');
  await waitFor(() => fake.answers.length === 8);
  assert.deepEqual([fake.answers[7].id, fake.answers[7].status], [107, 3]);
});

test('close() rejects in-flight calls with ECLOSED and resolves when the pipe is closed', async (t) => {
  const { fake, hub } = await setup(t);
  const p = hub.call('hold');
  await waitFor(() => fake.held.length === 1);
  let closed = 0;
  hub.on('close', () => closed++);
  const rejected = rejectsWith(p, (err) => { assert.equal(err.code, 'ECLOSED'); assert.match(err.message, /connection closed/); return true; });
  await within(hub.close());
  await rejected;
  assert.equal(closed, 1);
  await waitFor(() => fake.conn.sock.destroyed || fake.conn.sock.readableEnded, 2000, 'server side closed');
  await rejectsWith(hub.call('echo'), { code: 'ECLOSED' });
  assert.throws(() => hub.publish('t', 'x'), { code: 'ECLOSED' });
});

test('server closing -> in-flight calls reject with ECONNRESET, close emitted', async (t) => {
  const { fake, hub } = await setup(t);
  const closed = new Promise((resolve) => hub.once('close', resolve));
  const p = hub.call('hold');
  await waitFor(() => fake.held.length === 1);
  fake.conn.sock.destroy();
  await rejectsWith(p, { code: 'ECONNRESET' });
  const err = await within(closed);
  assert.equal(err.code, 'ECONNRESET');
  await rejectsWith(hub.call('echo'), { code: 'ECONNRESET' });
});

test('sys.shutdown event is treated like the server closing', async (t) => {
  const { fake, hub } = await setup(t);
  const closed = new Promise((resolve) => hub.once('close', resolve));
  const p = hub.call('hold');
  await waitFor(() => fake.held.length === 1);
  fake.event('sys.shutdown', 'server stopping');
  await rejectsWith(p, (err) => { assert.equal(err.code, 'ECONNRESET'); assert.match(err.message, /server stopping/); return true; });
  assert.equal((await within(closed)).code, 'ECONNRESET');
});

test('malformed frame from the server -> close with EPROTO', async (t) => {
  const { fake, hub } = await setup(t);
  const closed = new Promise((resolve) => hub.once('close', resolve));
  const p = hub.call('hold');
  await waitFor(() => fake.held.length === 1);
  // one good reply, then a header with version 2, in one write
  const good = encode({ kind: KIND.EVENT, route: 'x', payload: 'y' });
  const bad = Buffer.alloc(16);
  bad.writeUInt32LE(16, 0); bad[4] = 2; bad[5] = 2;
  fake.conn.sock.write(Buffer.concat([good, bad]));
  await rejectsWith(p, (err) => {
    assert.equal(err.code, 'EPROTO');
    assert.match(err.message, /version 2 != 1/);
    return true;
  });
  const err = await within(closed);
  assert.equal(err.code, 'EPROTO');
  assert.match(err.message, /protocol error/);
  assert.equal(hub.connected, false);
});

test('a lane frame (flags 0x01) from the server is a protocol error', async (t) => {
  const { fake, hub } = await setup(t);
  const closed = new Promise((resolve) => hub.once('close', resolve));
  const f = encode({ kind: KIND.EVENT, route: 'x', payload: Buffer.alloc(8) });
  f[7] = 1;
  fake.conn.sock.write(f);
  const err = await within(closed);
  assert.equal(err.code, 'EPROTO');
  assert.match(err.message, /lane/);
});

test('frames queued in one tick leave in one write', async (t) => {
  const { fake, hub } = await setup(t);
  const sock = hub._socket;
  const writes = [];
  const origWrite = sock.write;
  sock.write = function (data, ...rest) { writes.push(data.length); return origWrite.call(this, data, ...rest); };
  const N = 40;
  const calls = [];
  for (let i = 0; i < N; i++) calls.push(hub.call('echo', `m${i}`));
  hub.publish('topic.a', 'p');
  const res = await within(Promise.all(calls));
  assert.equal(res[N - 1].toString(), `m${N - 1}`);
  await waitFor(() => fake.conn.frames.length === N + 1);
  assert.equal(writes.length, 1, 'one socket.write');
  // 40 REQUESTs to 'echo' (20 bytes + 'm0'..'m39') and one EVENT 'topic.a' 'p'
  assert.equal(writes[0], 40 * 20 + 10 * 2 + 30 * 3 + (16 + 7 + 1));
  assert.equal(fake.conn.chunks, 1, 'one read on the server side');
  assert.equal(fake.conn.frames[N].route, 'topic.a');
});

test("a tick's frames past one 64 KiB output chunk, and one larger than it, leave in order in one write", async (t) => {
  const { fake, hub } = await setup(t);
  const sock = hub._socket;
  const writes = [];
  const origWrite = sock.write;
  sock.write = function (data, ...rest) { writes.push(data.length); return origWrite.call(this, data, ...rest); };
  const N = 1500;
  const calls = [];
  for (let i = 0; i < N; i++) calls.push(hub.call('echo', Buffer.alloc(100, i & 0xff)));
  calls.push(hub.call('echo', Buffer.alloc(200000, 0xab)));
  calls.push(hub.call('echo', 'last'));
  const res = await within(Promise.all(calls), 5000);
  res.slice(0, N).forEach((r, i) => { assert.equal(r.length, 100); assert.equal(r[0], i & 0xff); });
  assert.equal(res[N].length, 200000);
  assert.equal(res[N][199999], 0xab);
  assert.equal(res[N + 1].toString(), 'last');
  assert.equal(writes.length, 1, 'one socket.write');
  assert.equal(writes[0], N * 120 + (20 + 200000) + (20 + 4));
  // the next tick's frames go on in the same chunk, after what was written
  assert.equal((await within(hub.call('echo', 'again'))).toString(), 'again');
  assert.equal(writes.length, 2);
});

test('a reply payload stays as it was when later frames arrive', async (t) => {
  const { hub } = await setup(t);
  const first = await within(hub.call('echo', 'first'));
  const calls = [];
  for (let i = 0; i < 100; i++) calls.push(hub.call('echo', `x${i}`));
  await within(Promise.all(calls));
  assert.equal(first.toString(), 'first');
});

test('outgoing cap: past maxQueuedBytes call/publish reject with BUSY without queuing', async (t) => {
  const { fake, hub } = await setup(t, { maxQueuedBytes: 4096 });
  const a = hub.call('echo', Buffer.alloc(2000, 1));
  const b = hub.call('echo', Buffer.alloc(2000, 2));
  assert.equal(hub.queuedBytes, 2 * (16 + 4 + 2000));
  await rejectsWith(hub.call('echo', Buffer.alloc(2000, 3)), (err) => {
    assert.ok(err instanceof PipehubError);
    assert.equal(err.code, 'BUSY');
    assert.equal(err.status, 5);
    return true;
  });
  assert.throws(() => hub.publish('t', Buffer.alloc(2100)), { code: 'BUSY' });
  assert.equal(hub.queuedBytes, 2 * 2020, 'nothing more queued');
  const [ra, rb] = await within(Promise.all([a, b]));
  assert.equal(ra[0], 1);
  assert.equal(rb[0], 2);
  assert.equal(fake.conn.frames.length, 2);
  // once written the room is back
  assert.equal((await within(hub.call('echo', Buffer.alloc(3000, 4))))[0], 4);
});

test('write() returning false waits for drain; everything still arrives', async (t) => {
  const { fake, hub } = await setup(t);
  fake.conn.sock.pause(); // the server stops reading
  const calls = [];
  for (let i = 0; i < 8; i++) calls.push(hub.call('echo', Buffer.alloc(1024 * 1024, i)));
  await waitFor(() => hub._draining === true, 2000, 'write() to return false');
  // frames queued while waiting for drain are held, not written
  calls.push(hub.call('echo', 'tail'));
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(hub._outBytes > 0, 'held while draining');
  fake.conn.sock.resume();
  const res = await within(Promise.all(calls), 5000, 'calls after drain');
  assert.equal(res.length, 9);
  res.slice(0, 8).forEach((r, i) => { assert.equal(r.length, 1024 * 1024); assert.equal(r[0], i); });
  assert.equal(res[8].toString(), 'tail');
});

test('reconnect: calls reject ECONNRESET, then subscriptions and routes are restored', async (t) => {
  const { fake, hub } = await setup(t, { reconnect: { initialDelayMs: 20, maxDelayMs: 100 }, name: 'rc' });
  await within(hub.subscribe('news.*', () => {}));
  await within(hub.register('svc', () => 'ok'));
  const p = hub.call('hold');
  await waitFor(() => fake.held.length === 1);
  const disconnected = new Promise((resolve) => hub.once('disconnect', resolve));
  const reconnected = new Promise((resolve) => hub.once('reconnect', resolve));
  fake.conn.sock.destroy();
  await rejectsWith(p, { code: 'ECONNRESET' });
  assert.equal((await within(disconnected)).code, 'ECONNRESET');
  const errors = await within(reconnected, 3000, 'reconnect');
  assert.deepEqual(errors, []);
  assert.equal(fake.conns.length, 2);
  assert.deepEqual(fake.calls('sys.subscribe'), ['news.*', 'news.*']);
  assert.deepEqual(fake.calls('sys.register'), ['svc', 'svc']);
  assert.equal(fake.conns[1].frames[0].route, 'sys.hello');
  assert.equal((await within(hub.call('echo', 'again'))).toString(), 'again');
  fake.send(null, { kind: KIND.REQUEST, route: 'svc', id: 9, status: 1 });
  await waitFor(() => fake.answers.length === 1);
  assert.equal(fake.answers[0].payload.toString(), 'ok');
});
