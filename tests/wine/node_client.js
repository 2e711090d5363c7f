// The Node.js package (client/node) against a real pipehubd, run by
// Windows Node under Wine (tests/wine/node_client.sh):
//
//   node node_client.js PACKAGE_DIR PIPE OUT_FILE [MODE ARGS...]
//
// Without MODE: the checks below. Writes one "ok NAME" or "FAIL NAME: why"
// line per check to OUT_FILE (Node under Wine cannot write to a Unix pipe
// as its stdout) and exits 0 when every check passed. The modes play one
// side of a check the shell script makes with the C programs:
//   serve ROUTE        serve ROUTE ("node:" + payload); "ready" when it does
//   sub PATTERN N      print N events as "TOPIC PAYLOAD"; "ready" first
//   call ROUTE TEXT    print the reply
//   reconnect          connect with reconnect on, say "ready", wait for the
//                      daemon to come back, then "echo:" + a sys.echo reply
//   bench N [ROUTE]    N pipelined calls to sys.echo (or ROUTE), 1024 in
//                      flight: "bench ... msgs_per_s=..."
// Every wait is bounded.
'use strict';
const fs = require('fs');
const [pkgDir, pipe, outFile, mode, ...args] = process.argv.slice(2);
const { connect, PipehubError } = require(pkgDir);

const lines = [];
let failed = 0;
function ok(name) { lines.push(`ok   ${name}`); }
function fail(name, why) { failed++; lines.push(`FAIL ${name}: ${why}`); }
async function check(name, fn) {
  try {
    await Promise.race([
      fn(),
      new Promise((_, rej) => setTimeout(() => rej(new Error('no result within 30 s')), 30000)),
    ]);
    ok(name);
  } catch (e) {
    fail(name, `${e && e.code ? e.code + ': ' : ''}${e && e.message ? e.message : e}`);
  }
}
function expect(cond, what) { if (!cond) throw new Error(what); }

async function main() {
  let a, b;
  await check('connect to the daemon by bare name', async () => {
    a = await connect({ pipe, timeoutMs: 10000, name: 'node-a' });
    b = await connect({ pipe: '\\\\.\\pipe\\' + pipe, timeoutMs: 10000 });
  });
  if (!a || !b) return;

  await check('call sys.echo with a string, a Buffer and 1 MiB', async () => {
    const r1 = await a.call('sys.echo', 'hello');
    expect(Buffer.isBuffer(r1) && r1.toString() === 'hello', `got ${r1}`);
    const r2 = await a.call('sys.echo', Buffer.from([0, 1, 2, 255]));
    expect(r2.equals(Buffer.from([0, 1, 2, 255])), 'bytes differ');
    const big = Buffer.alloc(1000000, 7);
    const r3 = await a.call('sys.echo', big);
    expect(r3.equals(big), 'the 1 MB echo differs');
  });

  await check('10,000 pipelined calls all resolve with their own payloads', async () => {
    const calls = [];
    for (let i = 0; i < 10000; i++) calls.push(a.call('sys.echo', `n${i}`));
    const got = await Promise.all(calls);
    got.forEach((g, i) => expect(g.toString() === `n${i}`, `call ${i} got ${g}`));
  });

  await check('a route nobody serves is PipehubError NO_ROUTE (status 3)', async () => {
    try {
      await a.call('nobody.home', 'x');
      throw new Error('resolved');
    } catch (e) {
      expect(e instanceof PipehubError, `not a PipehubError: ${e}`);
      expect(e.code === 'NO_ROUTE' && e.status === 3, `code ${e.code} status ${e.status}`);
    }
  });

  await check('register: a route served by one client, called by another, with the caller id', async () => {
    let seen;
    const reg = await a.register('node.echo', async (req) => {
      seen = req;
      return Buffer.concat([Buffer.from('echo:'), req.payload]);
    });
    const r = await b.call('node.echo', 'abc');
    expect(r.toString() === 'echo:abc', `got ${r}`);
    expect(seen && seen.route === 'node.echo' && seen.callerId > 0, 'no request seen');
    const who = await (async () => {
      // sys.client answers only while the provider holds a request: ask
      // from inside a handler.
      let info;
      const reg2 = await a.register('node.who', async (req) => {
        info = await req.caller();
        return 'done';
      });
      await b.call('node.who', '');
      await reg2.unregister();
      return info;
    })();
    expect(who && typeof who.pid === 'number' && who.conn_id === seen.callerId,
           `caller() gave ${JSON.stringify(who)}`);
    await reg.unregister();
  });

  await check('a handler that throws PipehubError(300) sends ERROR 300; any other throw INTERNAL', async () => {
    const reg = await a.register('node.fail', async (req) => {
      if (req.payload.toString() === 'app') throw new PipehubError(300, 'app error');
      throw new Error('boom');
    });
    try { await b.call('node.fail', 'app'); throw new Error('resolved'); } catch (e) {
      expect(e.status === 300 && e.code === '300', `got ${e.code}/${e.status}`);
    }
    try { await b.call('node.fail', 'x'); throw new Error('resolved'); } catch (e) {
      expect(e.code === 'INTERNAL' && /boom/.test(e.message), `got ${e.code}: ${e.message}`);
    }
    await reg.unregister();
  });

  await check('publish reaches a subscriber; events() iterates; unsubscribe stops it', async () => {
    const got = [];
    const sub = await b.subscribe('node.news.*', (topic, payload) => got.push(`${topic}=${payload}`));
    a.publish('node.news.one', 'first');
    a.publish('node.news.two', Buffer.from('second'));
    const until = Date.now() + 10000;
    while (got.length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(got.join(',') === 'node.news.one=first,node.news.two=second', `got ${got}`);
    await sub.unsubscribe();
    const ac = new AbortController();
    const it = b.events('node.ev', { signal: ac.signal });
    setTimeout(() => a.publish('node.ev', 'x'), 200);
    for await (const ev of it) {
      expect(ev.topic === 'node.ev' && ev.payload.toString() === 'x', `got ${ev.topic}`);
      ac.abort();
      break;
    }
  });

  await check('subscribe and unsubscribe 1,000 times: sys.subscriptions does not grow', async () => {
    const before = JSON.parse((await a.call('sys.subscriptions', '')).toString()).length;
    for (let i = 0; i < 1000; i++) {
      const sub = await b.subscribe(`node.churn.${i % 7}`, () => {});
      await sub.unsubscribe();
    }
    const after = JSON.parse((await a.call('sys.subscriptions', '')).toString()).length;
    expect(after <= before, `sys.subscriptions went from ${before} to ${after} patterns`);
  });

  await check('route.up and route.down events', async () => {
    const seen = [];
    b.on('route.up', (r) => seen.push(`up:${r}`));
    b.on('route.down', (r) => seen.push(`down:${r}`));
    await new Promise((r) => setTimeout(r, 200));
    const reg = await a.register('node.updown', async () => 'x');
    await reg.unregister();
    const until = Date.now() + 10000;
    while (seen.length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(seen.includes('up:node.updown') && seen.includes('down:node.updown'), `got ${seen}`);
  });

  await check('a call that times out rejects ETIMEDOUT; an aborted one AbortError', async () => {
    const reg = await a.register('node.slow', () => new Promise(() => {}));
    const t0 = Date.now();
    try { await b.call('node.slow', '', { timeoutMs: 300 }); throw new Error('resolved'); } catch (e) {
      expect(e.code === 'ETIMEDOUT', `got ${e.code}`);
      expect(Date.now() - t0 < 5000, 'took too long');
    }
    const ac = new AbortController();
    const p = b.call('node.slow', '', { signal: ac.signal }).then(
      () => new Error('resolved'), (e) => e);
    ac.abort();
    const e = await p;
    expect(e.name === 'AbortError', `got ${e.name}`);
    await reg.unregister();
  });

  await check('routes() and stats() give the hub\'s JSON', async () => {
    const routes = await a.routes();
    expect(Array.isArray(routes) && routes.some((r) => r.route === 'sys.echo'), 'no sys.echo');
    const stats = await a.stats();
    expect(typeof stats.frames_in === 'number' && stats.frames_in > 0, 'no frames_in');
  });

  await check('close() rejects the calls in flight and resolves', async () => {
    const reg = await a.register('node.never', () => new Promise(() => {}));
    // Its outcome is taken at once, so the rejection is never unhandled.
    const p = b.call('node.never', '', { timeoutMs: 20000 }).then(
      () => new Error('resolved'), (e) => e);
    await new Promise((r) => setTimeout(r, 200));
    await b.close();
    const e = await p;
    expect(e.code === 'ECLOSED', `got ${e.code}: ${e.message}`);
    await reg.unregister();
    await a.close();
  });
}

// ---- the modes ---------------------------------------------------------------

function say(text) { fs.appendFileSync(outFile, text + '\n'); }

async function runMode() {
  const deadline = Date.now() + 60000;
  const until = (cond) => new Promise((resolve, reject) => {
    const t = setInterval(() => {
      if (cond()) { clearInterval(t); resolve(); } else if (Date.now() > deadline) {
        clearInterval(t); reject(new Error('no result within 60 s'));
      }
    }, 20);
  });
  if (mode === 'serve') {
    const hub = await connect({ pipe, timeoutMs: 20000 });
    let served = 0;
    await hub.register(args[0], async (req) => { served++; return `node:${req.payload}`; });
    say('ready');
    await until(() => served > 0);
    await new Promise((r) => setTimeout(r, 200));
    await hub.close();
  } else if (mode === 'sub') {
    const hub = await connect({ pipe, timeoutMs: 20000 });
    let n = 0;
    await hub.subscribe(args[0], (topic, payload) => { n++; say(`${topic} ${payload}`); });
    say('ready');
    await until(() => n >= Number(args[1]));
    await hub.close();
  } else if (mode === 'call') {
    const hub = await connect({ pipe, timeoutMs: 20000 });
    say((await hub.call(args[0], args[1])).toString());
    await hub.close();
  } else if (mode === 'reconnect') {
    const hub = await connect({ pipe, timeoutMs: 20000, reconnect: true });
    let back = false;
    hub.on('reconnect', () => { back = true; });
    hub.on('disconnect', () => say('lost'));
    say('ready');
    await until(() => back);
    say('echo:' + (await hub.call('sys.echo', 'again')).toString());
    await hub.close();
  } else if (mode === 'bench') {
    // As `pipehub bench async`: one 64-byte payload for every call, 1024
    // in flight, each reply checked against the payload.
    const hub = await connect({ pipe, timeoutMs: 20000 });
    const n = Number(args[0]), route = args[1] || 'sys.echo', window = 1024;
    const msg = Buffer.alloc(64);
    for (let i = 0; i < msg.length; i++) msg[i] = 0x61 + (i % 26);
    let sent = 0, done = 0;
    const t0 = process.hrtime.bigint();
    await new Promise((resolve, reject) => {
      const answered = (reply) => {
        if (!msg.equals(reply)) { reject(new Error(`call ${done}: wrong reply`)); return; }
        done++;
        if (done === n) resolve(); else next();
      };
      const next = () => {
        while (sent < n && sent - done < window) {
          sent++;
          hub.call(route, msg).then(answered, reject);
        }
      };
      next();
    });
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    say(`bench mode=node-async route=${route} msgs=${n} secs=${secs.toFixed(3)} msgs_per_s=${Math.round(n / secs)}`);
    await hub.close();
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
}

if (mode) {
  runMode().then(() => process.exit(0), (e) => {
    say(`error ${e && e.code ? e.code + ': ' : ''}${e && e.message}`);
    process.exit(1);
  });
} else main().catch((e) => fail('the script', e && e.stack ? e.stack : String(e))).finally(() => {
  lines.push(`${lines.length - failed} passed, ${failed} failed`);
  fs.writeFileSync(outFile, lines.join('\n') + '\n');
  process.exit(failed ? 1 : 0);
});
