import { strict as assert } from 'node:assert';
import { BpfError, BpfObject, Btf, VerifierError } from '../ts/index.js';
import { ensureTracefs, obj, throwsWith } from './helpers.js';

// Program settings made before load (bpf/prog_setters.bpf.c), each checked
// by what the kernel did with it.

const OBJ = obj('prog_setters');
const BPF_F_STRICT_ALIGNMENT = 1 << 0;

function open(): BpfObject {
  return new BpfObject(OBJ);
}

describe('program setters before load', () => {
  it('logLevel: the verifier log of a successful load is kept for that program only', () => {
    using o = open();
    const p = o.program('alu32');
    assert.equal(p.logLevel, 0);
    p.logLevel = 2;
    assert.equal(p.logLevel, 2);
    o.load();
    assert.match(p.verifierLog ?? '', /processed \d+ insns/);
    assert.equal(o.program('count_enter').verifierLog, undefined);
  });

  it('flags: BPF_F_STRICT_ALIGNMENT makes the verifier refuse a misaligned packet read', () => {
    using plain = open().load();
    assert.equal(plain.program('unaligned').flags, 0);
    assert.equal(plain.program('unaligned').testRun({ data: Buffer.alloc(64, 1) }).retval, 2, 'XDP_PASS');
    using o = open();
    o.program('unaligned').flags = BPF_F_STRICT_ALIGNMENT;
    assert.equal(o.program('unaligned').flags, BPF_F_STRICT_ALIGNMENT);
    const e = throwsWith(() => o.load(), { program: 'unaligned' }, VerifierError);
    assert.match((e as VerifierError).verifierLog, /misaligned packet access/);
  });

  it('expectedAttachType: a cgroup/sock program reading src_ip4 loads only as post_bind', () => {
    using wrong = open();
    wrong.program('post_bind_only').autoload = true;
    assert.equal(wrong.program('post_bind_only').expectedAttachType, 'cgroup_inet_sock_create');
    const e = throwsWith(() => wrong.load(), { program: 'post_bind_only' }, VerifierError);
    assert.match((e as VerifierError).verifierLog, /invalid bpf_context access/);
    using o = open();
    const p = o.program('post_bind_only');
    p.autoload = true;
    p.expectedAttachType = 'cgroup_inet4_post_bind';
    assert.equal(p.expectedAttachType, 'cgroup_inet4_post_bind');
    o.load();
    assert.ok(p.id! > 0);
  });

  it('attachTarget: a tp_btf program attaches where the setter says (sys_exit, not its section\'s sys_enter)', () => {
    // The second arguments the program saw from us around a getppid():
    // syscall numbers at sys_enter, return values (the parent's pid) at sys_exit.
    const secondArgs = (o: BpfObject): Set<bigint> => {
      const link = o.program('btf_tp').attach();
      try {
        void process.ppid;
      } finally {
        link.detach();
      }
      return new Set(o.map<bigint, bigint>('btf_tp_args').keys());
    };
    const NR_GETPPID = 110n; // x86_64
    const ppid = BigInt(process.ppid);
    using o = open();
    const p = o.program('btf_tp');
    p.autoload = true;
    p.attachTarget = 'sys_exit';
    assert.equal(p.attachTarget, 'sys_exit');
    o.rodata.target_tgid = process.pid;
    o.load();
    const atExit = secondArgs(o);
    assert.ok(atExit.has(ppid), `sys_exit: getppid()'s return value ${ppid} among ${[...atExit].join(', ')}`);
    using q = open();
    q.program('btf_tp').autoload = true;
    q.rodata.target_tgid = process.pid;
    q.load();
    const atEnter = secondArgs(q);
    assert.ok(atEnter.has(NR_GETPPID), `sys_enter: getppid's number among ${[...atEnter].join(', ')}`);
    assert.ok(!atEnter.has(ppid) || ppid === NR_GETPPID || ppid < 512n, 'and no return values (syscall numbers are below 512)');
    // Kernels from 5.11 also say which BTF type the program is attached to.
    const kernel = Btf.kernel();
    if (p.attachBtfId) assert.equal(kernel.type(p.attachBtfId).name, 'btf_trace_sys_exit');
    if (q.program('btf_tp').attachBtfId) assert.equal(kernel.type(q.program('btf_tp').attachBtfId!).name, 'btf_trace_sys_enter');
    using bad = open();
    bad.program('btf_tp').autoload = true;
    throwsWith(() => { bad.program('btf_tp').attachTarget = 'no_such_tracepoint_xyz'; }, { code: 'ESRCH' });
  });

  it('autoattach = false: obj.attach() skips the program, the other one runs', () => {
    ensureTracefs();
    using o = open();
    o.rodata.target_tgid = process.pid;
    o.program('count_other').autoattach = false;
    assert.equal(o.program('count_other').autoattach, false);
    assert.equal(o.program('count_enter').autoattach, true);
    o.load();
    const links = o.attach();
    try {
      for (let i = 0; i < 3; i++) void process.ppid;
    } finally {
      for (const l of links) l.detach();
    }
    assert.ok(Number(o.bss.enter_calls) >= 3);
    assert.equal(Number(o.bss.other_calls), 0, 'the program left alone saw nothing');
    assert.ok(o.program('count_other').fd >= 0, 'but it is loaded');
    // and obj.attach() says why it was left alone
    const other = links.skipped.find((s) => s.program === o.program('count_other'));
    assert.ok(other, `skipped: ${links.skipped.map((s) => s.program.name).join(', ')}`);
    assert.equal(other.reason, 'autoattach is off (prog.autoattach = false)');
    assert.deepEqual(links.links, [...links], 'the one link, count_enter\'s');
  });

  it('a section that names no program type: a clear error before load, loads once type is set', () => {
    using o = open();
    const p = o.program('custom_section');
    assert.equal(p.type, 'unspec');
    assert.equal(p.autoload, false, "'?' in the section: not loaded unless asked");
    p.autoload = true;
    const e = throwsWith(() => o.load(), { code: 'EINVAL', op: 'bpf_object__load' }, BpfError);
    assert.match(e.message, /program 'custom_section': section 'lbn_custom' names no program type; set prog\.type before load\(\)/);
    assert.equal(o.state, 'opened');
    p.type = 'socket_filter';
    o.load();
    assert.equal(p.testRun({ data: Buffer.alloc(64) }).retval, 0);
  });

  it('every setter throws a TypeError with a code after load', () => {
    using o = open().load();
    const p = o.program('alu32');
    const setters: [string, () => void][] = [
      ['type', () => { p.type = 'xdp'; }], ['expectedAttachType', () => { p.expectedAttachType = 'xdp'; }],
      ['flags', () => { p.flags = 0; }], ['logLevel', () => { p.logLevel = 1; }],
      ['attachTarget', () => { p.attachTarget = 'sys_exit'; }], ['autoattach', () => { p.autoattach = false; }],
      ['autoload', () => { p.autoload = false; }], ['ifindex', () => { p.ifindex = 1; }],
    ];
    for (const [name, set] of setters) {
      const e = throwsWith(set, { code: 'ERR_INVALID_STATE' }, TypeError);
      assert.match(e.message, new RegExp(`${name} can only change before load\\(\\)`));
    }
    using fresh = open();
    throwsWith(() => { fresh.program('alu32').logLevel = 99; }, { code: 'ERR_OUT_OF_RANGE' }, RangeError);
    throwsWith(() => { fresh.program('alu32').autoattach = 1 as never; }, { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    throwsWith(() => { fresh.program('alu32').flags = -1; }, { code: 'ERR_OUT_OF_RANGE' }, RangeError);
  });

  it('BpfProgram.fromId opens a loaded program by id; it owns its fd', async () => {
    const { BpfProgram } = await import('../ts/index.js');
    using o = open().load();
    const p = BpfProgram.fromId(o.program('alu32').id!);
    assert.equal(p.name, 'alu32');
    assert.equal(p.tag, o.program('alu32').tag);
    p.close();
    p.close();
    throwsWith(() => p.testRun({ data: Buffer.alloc(64) }), { code: 'ERR_INVALID_STATE' }, TypeError);
  });
});
