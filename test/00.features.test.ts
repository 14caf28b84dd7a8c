// features: what this kernel can do, found by trying, and errors that say
// which feature was missing. Each test asserts the answer on both sides: where
// the probe says yes the operation works, where it says no the operation
// fails with a BpfError naming the feature (and the probe's reason).
import { strict as assert } from 'node:assert';
import { BpfError, BpfMap, BpfObject, VerifierError, features } from '../ts/index.js';
import { isRequired, obj } from './helpers.js';

const place = process.env.LBN_PLACE ?? 'host';
const isReason = (r: unknown): boolean => typeof r === 'string' && r.length > 10;

describe('features: kernel probes', function () {
  this.timeout(60_000);

  it(`report(): every probe answers true or a reason; the table for this kernel (${place}) is printed`, function () {
    const report = features.report();
    const rows = Object.entries(report);
    assert.ok(rows.length >= 14);
    for (const [name, r] of rows) assert.ok(r === true || isReason(r), `${name}: ${String(r)}`);
    // What CI requires of this kernel must be there: a probe that says no fails here first.
    for (const [name, r] of rows) if (isRequired(name)) assert.equal(r, true, `LBN_REQUIRE names ${name}: ${String(r)}`);
    console.log(`      features on ${place}:\n${rows.map(([n, r]) => `        ${n.padEnd(20)} ${r === true ? 'yes' : r}`).join('\n')}`);
  });

  it('answers are cached: the same object twice, no second probe', function () {
    const first = features.kprobeMulti();
    assert.equal(features.kprobeMulti(), first);
    assert.equal(features.programType('socket_filter'), true);
    assert.equal(features.mapType('hash'), true);
    assert.equal(features.helper('socket_filter', 'bpf_map_lookup_elem'), true);
    assert.equal(features.helper('socket_filter', 'map_lookup_elem'), true); // the bpf_ prefix is optional
  });

  it('a helper a program type may not call: a reason naming both', function () {
    // bpf_xdp_adjust_head is XDP's own; socket filters never had it.
    const r = features.helper('socket_filter', 'bpf_xdp_adjust_head');
    assert.ok(isReason(r), String(r));
    assert.match(r as string, /calls of bpf_xdp_adjust_head\(\) from socket_filter programs are not in this kernel/);
  });

  it('bad names: TypeError ERR_INVALID_ARG_VALUE before any probe', function () {
    assert.throws(() => features.programType('nope' as never), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
    assert.throws(() => features.mapType('unspec' as never), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
    assert.throws(() => features.helper('xdp', 'no_such_helper'), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
    assert.throws(() => features.iterator('../etc'), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
  });

  it('a probe leaves nothing behind: no fd, no link, no program', function () {
    const fds = (): number => require('node:fs').readdirSync('/proc/self/fd').length;
    const before = fds();
    // Fresh answers: the probes behind report() run once per process, so
    // run the native ones again directly through new cache keys.
    features.iterator('bpf_map');
    features.iterator('tcp');
    features.helper('xdp', 'bpf_xdp_adjust_tail');
    assert.equal(fds(), before);
  });
});

describe('features: errors that use the probes', function () {
  this.timeout(60_000);

  it('kprobe.multi: attaches where the probe says yes; elsewhere a BpfError with unsupported = kprobeMulti', function () {
    const o = new BpfObject(obj('kprobe_test'));
    try {
      for (const p of o.programs.values()) p.autoload = p.name === 'on_kprobe_multi';
      o.load();
      const prog = o.program('on_kprobe_multi');
      const r = features.kprobeMulti();
      if (r === true) {
        const link = prog.attachKprobeMulti({ pattern: '__x64_sys_getppi*' });
        assert.equal(link.type, 'kprobe_multi');
        link.detach();
      } else {
        assert.throws(() => prog.attachKprobeMulti({ pattern: '__x64_sys_getppi*' }), (e: unknown) =>
          e instanceof BpfError && e.unsupported === 'kprobeMulti' && e.message.includes(r) && e.op.includes('kprobe_multi'));
      }
    } finally {
      o.close();
    }
  });

  it('a program the kernel refuses before verifying it (fentry without trampolines): a BpfError, not a VerifierError', function () {
    const o = new BpfObject(obj('kprobe_test'));
    try {
      for (const p of o.programs.values()) p.autoload = p.name === 'on_fexit';
      const r = features.trampolines();
      if (r === true) {
        o.load();
        assert.ok(o.program('on_fexit').fd > 0);
      } else {
        assert.throws(() => o.load(), (e: unknown) => {
          assert.ok(e instanceof BpfError && !(e instanceof VerifierError), String(e));
          assert.equal(e.unsupported, 'trampolines');
          assert.equal(e.program, 'on_fexit');
          assert.ok(e.message.includes(r), e.message);
          // root here: the privilege hint would be wrong, so it is not given
          assert.doesNotMatch(e.message, /CAP_BPF/);
          return true;
        });
      }
    } finally {
      o.close();
    }
  });

  it('lookupAndDelete on a hash map: works where the probe says yes, else unsupported = lookupAndDeleteHash', function () {
    const m = BpfMap.create({ type: 'hash', keySize: 4, valueSize: 8, maxEntries: 4 });
    try {
      m.update(1, 7n);
      const r = features.lookupAndDeleteHash();
      if (r === true) {
        assert.equal(m.lookupAndDelete(1)?.readBigUInt64LE(), 7n);
        assert.equal(m.lookup(1), undefined);
      } else {
        assert.throws(() => m.lookupAndDelete(1), (e: unknown) =>
          e instanceof BpfError && e.unsupported === 'lookupAndDeleteHash' && e.message.includes(r));
        assert.equal(m.lookup(1)?.readBigUInt64LE(), 7n);
      }
    } finally {
      m.close();
    }
  });

  it('a failure the probes do not explain stays as it was: no unsupported', function () {
    const o = new BpfObject(obj('verifier_reject'));
    try {
      assert.throws(() => o.load(), (e: unknown) => e instanceof VerifierError && e.unsupported === undefined);
    } finally {
      o.close();
    }
  });
});
