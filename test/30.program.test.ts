// BpfProgram: metadata, BPF_PROG_TEST_RUN, hand-written programs, pins;
// BpfLink: pin, fromPin, detach.
import { strict as assert } from 'node:assert';
import { existsSync, rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { BpfError, BpfLink, BpfObject, BpfProgram, VerifierError, asm, features } from '../ts/index.js';
import { bpftool, ensureTracefs, itIf, obj, pinPath } from './helpers.js';

const XDP_DROP = 1;
const XDP_PASS = 2;

describe('BpfProgram', function () {
  let o: BpfObject;
  before(() => {
    ensureTracefs();
    o = new BpfObject(obj('test_progs')).load();
  });
  after(() => o.close());

  it('metadata: name, type, section, instruction count, fd, id, tag (as bpftool shows them)', function () {
    const p = o.program('count_getppid');
    assert.equal(p.name, 'count_getppid');
    assert.equal(p.type, 'tracepoint');
    assert.equal(p.section, 'tracepoint/syscalls/sys_enter_getppid');
    assert.ok(p.insnCount > 5);
    assert.ok(p.fd > 0);
    assert.match(p.tag ?? '', /^[0-9a-f]{16}$/);
    assert.ok((p.xlatedInsnCount ?? 0) > 0);
    const shown = bpftool<{ id: number; name: string; type: string; tag: string }>('prog', 'show', 'id', String(p.id));
    assert.deepEqual(shown.name, 'count_getppid');
    assert.equal(shown.type, 'tracepoint');
    assert.equal(shown.tag, p.tag);
  });

  describe('testRun', function () {
    it('a socket filter returns its verdict (here: skb->len, the packet after its Ethernet header)', function () {
      const r = o.program('sock_len').testRun({ data: Buffer.alloc(64, 0xab) });
      assert.equal(r.retval, 64 - 14);
      assert.equal(typeof r.durationNs, 'number');
      assert.equal(r.dataOut?.length, 64);
      assert.deepEqual(r.dataOut.subarray(14), Buffer.alloc(50, 0xab)); // the kernel rewrites the MAC header
    });

    it('XDP: the first byte decides pass or drop, over repeated runs', function () {
      const even = Buffer.alloc(64);
      const odd = Buffer.alloc(64);
      odd[0] = 1;
      assert.equal(o.program('xdp_parity').testRun({ data: even }).retval, XDP_PASS);
      assert.equal(o.program('xdp_parity').testRun({ data: odd, repeat: 100 }).retval, XDP_DROP);
    });

    itIf('syscallPrograms', features.syscallPrograms())('SYSCALL programs run without data or repeat; the kernel rejects either', function () {
      const s = new BpfObject(obj('syscall_test')).load();
      try {
        const bump = s.program('bump');
        assert.equal(bump.type, 'syscall');
        assert.equal(bump.testRun().retval, 1);
        assert.equal(bump.testRun().retval, 2);
        assert.equal(s.map<number, bigint>('counter').lookup(0)!, 2n);
        assert.throws(() => bump.testRun({ repeat: 2 }), { name: 'BpfError', code: 'EINVAL', op: 'bpf_prog_test_run_opts' });
        assert.throws(() => bump.testRun({ data: Buffer.alloc(16) }), { name: 'BpfError', code: 'EINVAL' });
        assert.equal(s.map<number, bigint>('counter').lookup(0)!, 2n, 'the refused runs did not run');
      } finally {
        s.close();
      }
    });

    it('rejects bad options before the syscall', function () {
      assert.throws(() => o.program('sock_len').testRun({ repeat: -1 }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
      assert.throws(() => o.program('sock_len').testRun({ data: 'x' as unknown as Buffer }), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    });
  });

  describe('BpfProgram.load (hand-written instructions)', function () {
    it('loads, runs and reports what it returns', function () {
      const p = BpfProgram.load({ type: 'socket_filter', name: 'ret_seven', insns: [asm.mov64Imm(asm.R0, 7), asm.exit()] });
      try {
        assert.equal(p.name, 'ret_seven');
        assert.equal(p.type, 'socket_filter');
        assert.equal(p.insnCount, 2);
        assert.equal(p.section, '');
        assert.equal(p.testRun({ data: Buffer.alloc(20) }).retval, 7);
        assert.equal(bpftool<{ name: string }>('prog', 'show', 'id', String(p.id)).name, 'ret_seven');
      } finally {
        p.close();
      }
    });

    it('accepts the raw encoding as a Buffer, and keeps the log when logLevel asks for it', function () {
      const p = BpfProgram.load({
        type: 'socket_filter',
        insns: asm.assemble([asm.mov64Imm(asm.R0, 3), asm.exit()]),
        logLevel: 1,
      });
      try {
        assert.equal(p.testRun({ data: Buffer.alloc(20) }).retval, 3);
        assert.match(p.verifierLog ?? '', /processed 2 insns/);
      } finally {
        p.close();
      }
    });

    it('a rejected program throws a VerifierError with the reason', function () {
      assert.throws(() => BpfProgram.load({ type: 'socket_filter', insns: [asm.exit()] }), (e: unknown) =>
        e instanceof VerifierError && e instanceof BpfError && e.code === 'EACCES' && e.op === 'bpf_prog_load' &&
        /R0 !read_ok/.test(e.verifierLog) && /R0 !read_ok/.test(e.message));
    });

    it('a large rejected program gets its whole log (the buffer grows on ENOSPC)', function () {
      // The verifier logs every instruction it walks; 80k of them overflow
      // the first 1 MiB buffer on every kernel (Linux 5.10 logs about 19
      // bytes an instruction, newer kernels more), and the reason comes last.
      const insns = [...Array.from({ length: 80_000 }, () => asm.mov64Imm(asm.R0, 0)), asm.mov64Reg(asm.R0, asm.R2), asm.exit()];
      assert.throws(() => BpfProgram.load({ type: 'socket_filter', insns }), (e: unknown) => {
        assert.ok(e instanceof VerifierError, String(e));
        assert.equal(e.code, 'EACCES');
        assert.ok(e.verifierLog.length > 1 << 20, `log of ${e.verifierLog.length} bytes`);
        assert.match(e.verifierLog, /R2 !read_ok/);
        assert.match(e.message, /R2 !read_ok/);
        assert.ok(e.message.length < 2000);
        return true;
      });
    });

    it('a large accepted program with logLevel gets its whole log too', function () {
      const insns = [...Array.from({ length: 40_000 }, () => asm.mov64Imm(asm.R0, 0)), asm.exit()];
      const p = BpfProgram.load({ type: 'socket_filter', insns, logLevel: 2 }); // level 2: every state
      try {
        assert.ok((p.verifierLog ?? '').length > 1 << 20);
        assert.match(p.verifierLog ?? '', /processed 40001 insns/);
      } finally {
        p.close();
      }
    });
  });

  describe('pins', function () {
    it('a pinned program reopens by path with the same id and runs', function () {
      const path = pinPath('prog');
      const p = o.program('sock_len');
      p.pin(path);
      try {
        const again = BpfProgram.fromPin(path);
        try {
          assert.equal(again.id, p.id);
          assert.equal(again.type, 'socket_filter');
          assert.equal(again.testRun({ data: Buffer.alloc(33) }).retval, 33 - 14);
          assert.equal(bpftool<{ id: number }>('prog', 'show', 'pinned', path).id, p.id);
        } finally {
          again.close();
        }
      } finally {
        p.unpin();
      }
      assert.equal(existsSync(path), false);
    });

    it('a pinned link keeps the program attached after detach(); fromPin reopens it', async function () {
      const path = pinPath('link');
      const calls = (): number => {
        return Number(o.map<number, bigint>('getppid_calls').lookup(process.pid) ?? 0n);
      };
      // A raw tracepoint's link: a kernel bpf_link (a tracepoint's is one only since Linux 5.15).
      const link = o.program('raw_getppid').attachRawTracepoint('sys_enter');
      assert.equal(link.type, 'raw_tracepoint');
      const id = link.id;
      link.pin(path);
      let start: number;
      try {
        link.detach();
        start = calls();
        void process.ppid;
        assert.equal(calls(), start + 1, 'still attached through the pin');
        const again = BpfLink.fromPin(path);
        try {
          assert.ok(again.id !== undefined && again.id > 0);
          assert.equal(again.id, id);
          assert.equal(again.programId, o.program('raw_getppid').id);
          const shown = bpftool<{ id: number; prog_id: number }[]>('link', 'show').find((l) => l.id === again.id);
          assert.equal(shown?.prog_id, o.program('raw_getppid').id);
          again.unpin();
        } finally {
          again.detach();
          again.detach();
        }
      } finally {
        // a failure above must not leave it attached
        link.detach();
        rmSync(path, { force: true });
      }
      // Detached once the pin is gone and the last handle released: at once
      // on newer kernels; Linux 5.10 drops the pin's reference when it frees
      // the inode, after an RCU grace period.
      const deadline = Date.now() + 5_000;
      for (;;) {
        start = calls();
        void process.ppid;
        if (calls() === start) break;
        if (Date.now() > deadline) assert.fail('still attached 5 s after the pin and the last handle went');
        await sleep(20);
      }
      assert.equal(bpftool<{ id: number }[]>('link', 'show').find((l) => l.id === id), undefined, `link ${id} is gone`);
    });

    it('a socket filter attachment cannot be pinned', function () {
      const s = BpfProgram.load({ type: 'socket_filter', insns: [asm.mov64Imm(asm.R0, 0), asm.exit()] });
      const { createSocket } = require('node:dgram') as typeof import('node:dgram');
      const sock = createSocket('udp4');
      sock.bind(0, '127.0.0.1');
      return new Promise<void>((resolve, reject) => sock.once('listening', () => {
        try {
          const link = s.attachSocket(sock);
          assert.throws(() => link.pin(pinPath('sock')), { name: 'BpfError', code: 'EOPNOTSUPP' });
          resolve();
        } catch (e) {
          reject(e);
        } finally {
          s.close();
          sock.close();
        }
      }));
    });
  });
});
