// bpf_printk through tracePipe(): a program of ours prints a marker with a
// nonce on this process's getppid(); the line comes back parsed, with this
// process's pid and a CPU that exists. Abort and break end the reading at
// once, with no line coming.
import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { BpfObject, tracePipe, type TracePipeLine } from '../ts/index.js';
import { ensureTracefs, obj, openFds, throwsWith } from './helpers.js';
import { parseTraceLine } from '../ts/trace_pipe.js';

const TRACING_ON = '/sys/kernel/tracing/tracing_on';

describe('bpf_printk: tracePipe()', function () {
  this.timeout(20_000);
  let o: BpfObject;
  let wasOn: string;
  before(() => {
    ensureTracefs();
    wasOn = readFileSync(TRACING_ON, 'utf8').trim();
    o = new BpfObject(obj('info_test')).load();
  });
  after(() => {
    o.close();
    // tracing_on is system-wide: as it was before these tests
    writeFileSync(TRACING_ON, wasOn);
  });

  it('parses the kernel\'s line formats', function () {
    const a = parseTraceLine('           <...>-12345   [003] d..31 12345.678901: bpf_trace_printk: libbpf-node-marker 42');
    assert.deepEqual({ ...a }, {
      task: '<...>', pid: 12345, cpu: 3, flags: 'd..31', timestamp: 12345.678901, event: 'bpf_trace_printk',
      message: 'libbpf-node-marker 42', line: a!.line,
    });
    const b = parseTraceLine(' node worker-1-77 (     77) [000] .... 5.000001: bpf_trace_printk: hi: there');
    assert.equal(b?.task, 'node worker-1');
    assert.equal(b?.pid, 77);
    assert.equal(b?.message, 'hi: there');
    assert.equal(b?.flags, '....');
    const c = parseTraceLine('  sh-5 [001] 7.5: bpf_trace_printk: no flags');
    assert.equal(c?.flags, undefined);
    assert.equal(c?.cpu, 1);
    assert.equal(parseTraceLine('CPU:2 [LOST 5 EVENTS]'), undefined);
  });

  it('finds the marker bpf_printk wrote, with our pid and a valid cpu; break ends it', async function () {
    const nonce = (Math.random() * 0xffff_ffff) >>> 0;
    o.bss.printk_tgid = process.pid;
    o.bss.printk_nonce = nonce;
    using link = o.program('info_printk').attach();
    assert.ok(link.attached);
    const fds = openFds();
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new Error('no marker within 10 s')), 10_000);
    // getppid() from this thread, a few times until the line arrives
    const poke = setInterval(() => void process.ppid, 50);
    let found: TracePipeLine | undefined;
    try {
      for await (const l of tracePipe({ pid: process.pid, signal: ac.signal, tracingOn: true })) {
        assert.equal(l.pid, process.pid);
        if (l.message === `libbpf-node-marker ${nonce}`) {
          found = l;
          break;
        }
      }
    } finally {
      clearInterval(poke);
      clearTimeout(timer);
      o.bss.printk_tgid = 0;
    }
    assert.ok(found);
    assert.equal(found.event, 'bpf_trace_printk');
    assert.ok(found.cpu >= 0 && found.cpu < Math.max(availableParallelism(), 1) * 4);
    assert.ok(found.timestamp > 0);
    assert.ok(found.task.length > 0);
    assert.equal(openFds(), fds, 'break closed the trace_pipe fd');
    assert.equal(readFileSync(TRACING_ON, 'utf8').trim(), '1');
  });

  it('abort ends a read that has no line coming within a bounded time, and releases the fd', async function () {
    const fds = openFds();
    const ac = new AbortController();
    // a pid no line will come from
    const it = tracePipe({ pid: 0x7fff_fff0, signal: ac.signal });
    const pending = it.next();
    await sleep(100);
    const t0 = performance.now();
    ac.abort(new Error('stop'));
    await assert.rejects(pending, /stop/);
    assert.ok(performance.now() - t0 < 500, `ended in ${performance.now() - t0} ms`);
    assert.equal(openFds(), fds);
    await assert.rejects(it.next(), /stop/);
  });

  it('return() ends a pending iteration; an already aborted signal opens nothing', async function () {
    const fds = openFds();
    const it = tracePipe({ pid: 0x7fff_fff0 });
    const pending = it.next();
    await sleep(50);
    await it.return!();
    assert.deepEqual(await pending, { value: undefined, done: true });
    assert.equal(openFds(), fds);
    const ac = new AbortController();
    ac.abort(new Error('before'));
    await assert.rejects(tracePipe({ signal: ac.signal }).next(), /before/);
    assert.equal(openFds(), fds);
  });

  it('a pending read does not keep the process alive once abandoned (no thread, no ref after return)', async function () {
    // Many readers opened and ended: no threadpool thread is held (a
    // blocked fs read would hold one each and starve the pool at 4).
    for (let i = 0; i < 8; i++) {
      const it = tracePipe({ pid: 0x7fff_fff0 });
      const p = it.next();
      await it.return!();
      await p;
    }
    const { readFile } = await import('node:fs/promises');
    const t0 = performance.now();
    await readFile('/proc/self/stat'); // a threadpool job still runs at once
    assert.ok(performance.now() - t0 < 1000);
  });

  it('checks its options before opening anything', function () {
    throwsWith(() => tracePipe({ pid: -1 }), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
    throwsWith(() => tracePipe({ pid: 1.5 }), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
    throwsWith(() => tracePipe({ signal: {} as never }), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    throwsWith(() => tracePipe({ tracingOn: 1 as never }), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    throwsWith(() => tracePipe({ path: '/nonexistent/trace_pipe' }), { code: 'ENOENT', op: 'open' });
  });
});
