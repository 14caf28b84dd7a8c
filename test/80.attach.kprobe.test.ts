// kprobes, kretprobes, ksyscall, kprobe.multi, fentry/fexit and LSM. The
// host kernel of this project has no kprobes and refuses BPF trampolines,
// so here these tests skip, saying why in their titles (the probes of
// `features`); CI runs this file inside a VM under Debian's kernels
// (.ci/run, ../shared/vm), where they run, and names the features each
// kernel must have in LBN_REQUIRE (kprobes, kprobeMulti, trampolines, lsm).
import { strict as assert } from 'node:assert';
import { closeSync, openSync } from 'node:fs';
import { BpfError, BpfObject, features } from '../ts/index.js';
import { ensureTracefs, itIf, obj, withoutFdLeak } from './helpers.js';

const SLOT = { KPROBE: 0, KRETPROBE: 1, KSYSCALL: 2, KPROBE_MULTI: 3, FENTRY: 4, FEXIT: 5, LSM: 6 } as const;
const ALL = ['on_kprobe', 'on_kretprobe', 'on_ksyscall', 'on_kprobe_multi', 'on_fentry', 'on_fexit', 'on_file_open'];
const GETPPID = '__x64_sys_getppid';

// Opens kprobe_test with only `names` loaded (trampoline and LSM programs
// fail to load on kernels without them), counting for this process.
function load(names: string[], setup?: (o: BpfObject) => void): BpfObject {
  const o = new BpfObject(obj('kprobe_test'));
  for (const p of ALL) o.program(p).autoload = names.includes(p);
  setup?.(o);
  try {
    o.load();
  } catch (e) {
    o.close();
    throw e;
  }
  o.map('settings').update(0, BigInt(process.pid));
  return o;
}

const kprobes = features.kprobes();
const kprobeIt = itIf('kprobes', kprobes);
const kprobeMultiIt = itIf('kprobeMulti', features.kprobeMulti());
const trampolineIt = itIf('trampolines', features.trampolines());
// The other way round: a test of a kernel that lacks kprobes.
const noKprobesIt = kprobes === true
  ? ((title: string, fn?: Mocha.Func) => it.skip(`${title} — skipped: this kernel has kprobes (the tests above attach them)`, fn)) as Mocha.TestFunction
  : it;
const lsmIt = itIf('lsm', features.lsm());

describe('attach: kprobes, trampolines and LSM', function () {
  this.timeout(120_000); // 20x slower CPU under the VM's emulation
  let o: BpfObject | undefined;
  const hits = (slot: number): number => Number(o!.map<number, bigint>('hits').lookup(slot)!);
  const getppid = (n: number): void => {
    for (let i = 0; i < n; i++) void process.ppid;
  };
  before(() => {
    if (kprobes === true) ensureTracefs();
  });
  afterEach(() => o?.close());

  kprobeIt(`attachKprobe on ${GETPPID}: one hit per call`, function () {
    o = load(['on_kprobe']);
    const link = o.program('on_kprobe').attachKprobe(GETPPID);
    getppid(13);
    assert.equal(hits(SLOT.KPROBE), 13);
    link.detach();
    getppid(2);
    assert.equal(hits(SLOT.KPROBE), 13);
  });

  kprobeIt(`attachKprobe {retprobe: true}: a kretprobe, one hit per return`, function () {
    o = load(['on_kretprobe']);
    o.program('on_kretprobe').attachKprobe(GETPPID, { retprobe: true });
    getppid(7);
    assert.equal(hits(SLOT.KRETPROBE), 7);
  });

  kprobeIt(`attachKsyscall('getppid'): the architecture's syscall function, found by libbpf`, function () {
    o = load(['on_ksyscall']);
    o.program('on_ksyscall').attachKsyscall('getppid');
    getppid(5);
    assert.equal(hits(SLOT.KSYSCALL), 5);
  });

  kprobeMultiIt('attachKprobeMulti: one link over a glob of functions', function () {
    o = load(['on_kprobe_multi']);
    const link = o.program('on_kprobe_multi').attachKprobeMulti({ pattern: '__x64_sys_getppi*' });
    getppid(4);
    assert.equal(hits(SLOT.KPROBE_MULTI), 4);
    assert.equal(link.type, 'kprobe_multi');
  });

  kprobeIt(`a kprobe on a function that does not exist: BpfError naming it, no fd leak`, function () {
    o = load(['on_kprobe']);
    withoutFdLeak(() => {
      assert.throws(() => o!.program('on_kprobe').attachKprobe('no_such_kernel_function'), (e: unknown) =>
        e instanceof BpfError && e.op === 'bpf_program__attach_kprobe_opts' && /no_such_kernel_function/.test(e.message));
    });
    assert.equal(o.program('on_kprobe').links.length, 0);
  });

  trampolineIt(`fentry with attachTarget set before load, fexit by section, on do_sys_openat2`, function () {
    o = load(['on_fentry', 'on_fexit'], (x) => {
      x.program('on_fentry').attachTarget = 'do_sys_openat2';
    });
    const links = o.attach();
    assert.equal(links.length, 2);
    for (let i = 0; i < 6; i++) closeSync(openSync('/dev/null', 'r'));
    assert.equal(hits(SLOT.FENTRY), 6);
    assert.equal(hits(SLOT.FEXIT), 6);
    assert.deepEqual(links.map((l) => l.type), ['tracing', 'tracing']);
  });

  lsmIt(`LSM file_open: one hit per open(2) of this process`, function () {
    o = load(['on_file_open']);
    o.program('on_file_open').attach();
    for (let i = 0; i < 8; i++) closeSync(openSync('/dev/null', 'r'));
    assert.ok(hits(SLOT.LSM) >= 8, `${hits(SLOT.LSM)} opens seen`);
  });

  noKprobesIt('on a kernel without kprobes, attaching one is a BpfError saying so, not a crash', function () {
    o = load(['on_kprobe']);
    withoutFdLeak(() => {
      assert.throws(() => o!.program('on_kprobe').attachKprobe(GETPPID), (e: unknown) =>
        e instanceof BpfError && e.op === 'bpf_program__attach_kprobe_opts' && e.message.includes(GETPPID) &&
        e.unsupported === 'kprobes');
    });
  });
});
