import { strict as assert } from 'node:assert';
import { closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { asm, BpfError, BpfMap, BpfObject, BpfProgram, features, openRawSocket, VerifierError } from '../ts/index.js';
import { ensureTracefs, obj, openFds, throwsWith, withoutFdLeak } from './helpers.js';

// Bad input must give a clear error of the right class and code, never a
// crash, and must not leave an fd behind. Every case runs inside
// withoutFdLeak (the fds of /proc/self/fd counted before and after).

const REASON = "invalid mem access 'map_value_or_null'";
// Whether a tracepoint attachment is a kernel bpf_link (perf_event links came
// with BPF cookies, Linux 5.15).
const PERF_LINKS = features.bpfCookie() === true;

function invalidState(fn: () => unknown): Error {
  return throwsWith(fn, { code: 'ERR_INVALID_STATE' }, TypeError);
}

function bpfError(fn: () => unknown, props: Record<string, unknown>): BpfError {
  return throwsWith(fn, props, BpfError) as BpfError;
}

/** A socket filter that keeps nothing: r0 = 0; exit. */
function dropAll(): BpfProgram {
  return BpfProgram.load({ type: 'socket_filter', insns: [asm.mov64Imm(asm.R0, 0), asm.exit()] });
}

/** Runs `fn` with an AF_PACKET socket on lo, closed afterwards. */
function withSocket<T>(fn: (fd: number) => T): T {
  const fd = openRawSocket('lo');
  try {
    return fn(fd);
  } finally {
    closeSync(fd);
  }
}

/** The number of possible CPUs, from sysfs ("0-3,5"). */
function possibleCpus(): number {
  return readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim().split(',')
    .map((r) => r.split('-').map(Number))
    .reduce((n, [lo, hi]) => n + (hi === undefined ? 1 : hi - lo! + 1), 0);
}

// A 64-byte frame for test runs; a socket filter sees it without its 14-byte
// Ethernet header (skb->len = 50), as on a real socket.
const FRAME = Buffer.alloc(64, 0x11);

describe('bad input: clear errors, no crash, no fd leak', () => {
  const dir = tmpdir();
  const textFile = path.join(dir, `libbpf-node-test-${process.pid}-not-elf.txt`);
  const halfFile = path.join(dir, `libbpf-node-test-${process.pid}-half.bpf.o`);
  let half: Buffer;

  before(async () => {
    writeFileSync(textFile, 'this is plain text, not an ELF object\n');
    const full = readFileSync(obj('test_progs'));
    half = full.subarray(0, full.length >> 1);
    writeFileSync(halfFile, half);
    ensureTracefs();
    // Warm-up: what Node, libuv and libbpf open once per process (the thread
    // pool, feature probes) must not count as a leak in the cases below.
    new BpfObject(obj('test_progs')).load().close();
    const w = new BpfObject(obj('verifier_reject'));
    await w.loadAsync().catch(() => undefined);
    w.close();
    BpfMap.create({ type: 'hash', keySize: 4, valueSize: 4, maxEntries: 1 }).close();
    withSocket(() => undefined);
  });

  after(() => {
    rmSync(textFile, { force: true });
    rmSync(halfFile, { force: true });
  });

  describe('files that are not BPF objects', () => {
    it('a missing file: BpfError ENOENT from bpf_object__open_file, naming the path', () => {
      withoutFdLeak(() => {
        const p = '/nonexistent/x.bpf.o';
        const e = bpfError(() => new BpfObject(p), { code: 'ENOENT', errno: 2, op: 'bpf_object__open_file', target: p });
        assert.ok(e.message.includes(p), e.message);
        assert.ok(e.log.includes(p), e.log);
      });
    });

    it("a text file: BpfError with libbpf's errno (4001, bad object format) and libbpf's own message", () => {
      withoutFdLeak(() => {
        const e = bpfError(() => new BpfObject(textFile), { errno: 4001, op: 'bpf_object__open_file', target: textFile });
        assert.ok(e.message.includes(textFile), e.message);
        assert.notEqual(e.log, '');
        assert.match(e.log, /not a proper ELF object/);
        assert.match(e.message, /not a proper ELF object/);
      });
    });

    it("libbpf's own errnos are named like errnos: 4001 is 'LIBBPF_ERRNO__FORMAT'", () => {
      withoutFdLeak(() => {
        const e = bpfError(() => new BpfObject(textFile), { errno: 4001 });
        assert.equal(e.code, 'LIBBPF_ERRNO__FORMAT');
        assert.doesNotMatch(e.message, /errno 4001/);
      });
    });

    it('a truncated object, from a file and from memory: BpfError, op names the open call', () => {
      withoutFdLeak(() => {
        const f = bpfError(() => new BpfObject(halfFile), { errno: 4001, op: 'bpf_object__open_file', target: halfFile });
        assert.notEqual(f.log, '');
        const m = bpfError(() => BpfObject.fromBuffer(half), { errno: 4001, op: 'bpf_object__open_mem' });
        assert.notEqual(m.log, '');
        assert.equal(m.code, f.code);
        // A Uint8Array view of the same bytes takes the same path.
        bpfError(() => BpfObject.fromBuffer(new Uint8Array(half)), { op: 'bpf_object__open_mem' });
        bpfError(() => BpfObject.fromBuffer(Buffer.alloc(0)), { op: 'bpf_object__open_mem' });
        throwsWith(() => BpfObject.fromBuffer('x' as never), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
        throwsWith(() => new BpfObject(42 as never), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
      });
    });
  });

  describe('verifier rejection', () => {
    it('load(): VerifierError EACCES naming the program, with the whole log and a short message', () => {
      withoutFdLeak(() => {
        const o = new BpfObject(obj('verifier_reject'));
        try {
          const e = throwsWith(() => o.load(), { code: 'EACCES', errno: 13, op: 'bpf_object__load' }, VerifierError);
          assert.ok(e instanceof VerifierError);
          assert.ok(e instanceof BpfError);
          assert.equal(e.name, 'VerifierError');
          assert.equal(e.program, 'unchecked_lookup');
          assert.ok(e.verifierLog.includes(REASON), e.verifierLog);
          assert.ok(e.message.includes(REASON), e.message);
          assert.ok(e.message.includes('unchecked_lookup'), e.message);
          const lines = (t: string): number => t.split('\n').filter((l) => l.trim() !== '').length;
          assert.ok(lines(e.message) < lines(e.verifierLog), `${lines(e.message)} vs ${lines(e.verifierLog)} lines`);
          assert.ok(e.message.length < e.verifierLog.length);
          assert.equal(o.state, 'failed');
          assert.equal(o.loaded, false);
          invalidState(() => o.load());
          assert.equal(o.state, 'failed');
          // Nothing of a failed object is usable.
          invalidState(() => o.map('values').lookup(0));
          invalidState(() => o.program('ok_prog').testRun({ data: FRAME }));
        } finally {
          o.close();
        }
        assert.equal(o.state, 'closed');
      });
    });

    it('loadAsync(): rejects with the same VerifierError; a second loadAsync() rejects with ERR_INVALID_STATE', async () => {
      const before = openFds();
      const o = new BpfObject(obj('verifier_reject'));
      try {
        await assert.rejects(o.loadAsync(), (e: unknown) => {
          assert.ok(e instanceof VerifierError, String(e));
          assert.equal(e.code, 'EACCES');
          assert.equal(e.program, 'unchecked_lookup');
          assert.ok(e.verifierLog.includes(REASON));
          assert.ok(e.message.includes(REASON));
          return true;
        });
        assert.equal(o.state, 'failed');
        await assert.rejects(o.loadAsync(), (e: unknown) => {
          assert.ok(e instanceof TypeError, String(e));
          assert.equal((e as { code?: unknown }).code, 'ERR_INVALID_STATE');
          return true;
        });
      } finally {
        o.close();
      }
      // Not withoutFdLeak: the awaits let other files' sockets finish closing,
      // so the count may drop here, but it must not grow.
      const after = openFds();
      assert.ok(after <= before, `fd leak: ${before} fds before, ${after} after`);
    });

    it("BpfProgram.load() of a bare exit: VerifierError whose log says 'R0 !read_ok'", () => {
      withoutFdLeak(() => {
        const e = throwsWith(() => BpfProgram.load({ type: 'socket_filter', insns: [asm.exit()] }),
          { code: 'EACCES', op: 'bpf_prog_load' }, VerifierError) as VerifierError;
        assert.match(e.verifierLog, /R0 !read_ok/);
        assert.match(e.message, /R0 !read_ok/);
      });
    });

    it('autoload = false leaves the bad program out: the object loads and ok_prog gets an fd', () => {
      withoutFdLeak(() => {
        const o = new BpfObject(obj('verifier_reject'));
        try {
          const bad = o.program('unchecked_lookup');
          assert.equal(bad.autoload, true);
          bad.autoload = false;
          assert.equal(bad.autoload, false);
          o.load();
          assert.equal(o.state, 'loaded');
          const ok = o.program('ok_prog');
          assert.ok(ok.fd > 0, `fd ${ok.fd}`);
          assert.ok((ok.id ?? 0) > 0);
          assert.equal(ok.testRun({ data: FRAME }).retval, 0);
          // The map the bad program would have used exists all the same.
          const values = o.map('values');
          values.update(0, 5);
          assert.equal(values.lookup(0), 5n);
          invalidState(() => { bad.autoload = true; });
        } finally {
          o.close();
        }
      });
    });

    it('a program left out by autoload = false reports fd -1, as documented for programs not loaded', () => {
      withoutFdLeak(() => {
        const o = new BpfObject(obj('verifier_reject'));
        try {
          o.program('unchecked_lookup').autoload = false;
          assert.equal(o.program('unchecked_lookup').fd, -1);
          o.load();
          assert.equal(o.program('unchecked_lookup').fd, -1);
        } finally {
          o.close();
        }
      });
    });
  });

  describe('keys and values of the wrong size or type', () => {
    let o: BpfObject;
    before(() => {
      o = new BpfObject(obj('test_progs')).load();
    });
    after(() => {
      o.close();
    });

    it('a key Buffer of 3 bytes for a 4-byte key: RangeError ERR_INVALID_BUFFER_SIZE, nothing written', () => {
      withoutFdLeak(() => {
        const m = o.map('hash_map');
        const k3 = Buffer.from([1, 2, 3]);
        const size = { code: 'ERR_INVALID_BUFFER_SIZE' };
        throwsWith(() => m.lookup(k3), size, RangeError);
        throwsWith(() => m.update(k3, 1), size, RangeError);
        throwsWith(() => m.delete(k3), size, RangeError);
        throwsWith(() => m.lookupAndDelete(k3), size, RangeError);
        throwsWith(() => m.update(Buffer.alloc(5), 1), size, RangeError);
        throwsWith(() => m.update(new Uint8Array(3), 1), size, RangeError);
        // percpu_hash_map has 8-byte keys: a 4-byte Buffer is refused there.
        throwsWith(() => o.map('percpu_hash_map').update(Buffer.alloc(4), 1), size, RangeError);
        assert.deepEqual([...o.map('percpu_hash_map').keys()], []);
        assert.deepEqual([...m.keys()], []);
      });
    });

    it('a value of the wrong size: RangeError ERR_INVALID_BUFFER_SIZE, nothing written', () => {
      withoutFdLeak(() => {
        const size = { code: 'ERR_INVALID_BUFFER_SIZE' };
        const m = o.map('hash_map');
        throwsWith(() => m.update(1, Buffer.alloc(7)), size, RangeError);
        throwsWith(() => m.update(1, Buffer.alloc(9)), size, RangeError);
        throwsWith(() => m.update(1, Buffer.alloc(0)), size, RangeError);
        assert.equal(m.lookup(1), undefined);
        // Per-CPU: each CPU's value is checked.
        const p = o.map('percpu_hash_map');
        const values = Array.from({ length: possibleCpus() }, () => Buffer.alloc(4));
        values[values.length - 1] = Buffer.alloc(8);
        throwsWith(() => p.update(1n, values), size, RangeError);
        throwsWith(() => p.update(1n, Buffer.alloc(8)), size, RangeError);
        assert.equal(p.lookup(1n), undefined);
        // And a value that does not fit as a number.
        throwsWith(() => p.update(1n, 2 ** 32), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
        assert.equal(p.lookup(1n), undefined);
      });
    });

    it('a key or value of the wrong type: TypeError ERR_INVALID_ARG_TYPE', () => {
      withoutFdLeak(() => {
        const m = o.map('hash_map');
        const type = { code: 'ERR_INVALID_ARG_TYPE' };
        throwsWith(() => m.lookup('1' as never), type, TypeError);
        throwsWith(() => m.update('1' as never, 1), type, TypeError);
        throwsWith(() => m.delete('1' as never), type, TypeError);
        throwsWith(() => m.lookup(null as never), type, TypeError);
        throwsWith(() => m.lookup(undefined as never), type, TypeError);
        throwsWith(() => m.lookup({} as never), type, TypeError);
        throwsWith(() => m.update(1, '1' as never), type, TypeError);
        throwsWith(() => m.update(1, null as never), type, TypeError);
        throwsWith(() => m.update(1, [1, 2] as never), type, TypeError);
        assert.deepEqual([...m.keys()], []);
      });
    });
  });

  describe('use after close()', () => {
    it('maps, programs and the object of a closed BpfObject throw TypeError ERR_INVALID_STATE', () => {
      withoutFdLeak(() => withSocket((sock) => {
        const o = new BpfObject(obj('test_progs')).load();
        const m = o.map('hash_map');
        const p = o.program('sock_len');
        // All of it works while the object is open.
        m.update(1, 2);
        assert.equal(m.lookup(1), 2n);
        assert.equal(p.testRun({ data: FRAME }).retval, FRAME.length - 14);
        o.close();
        assert.equal(o.state, 'closed');
        assert.equal(m.closed, true);
        assert.equal(p.closed, true);
        invalidState(() => m.lookup(1));
        invalidState(() => m.update(1, 3));
        invalidState(() => m.delete(1));
        invalidState(() => [...m.keys()]);
        invalidState(() => p.testRun({ data: FRAME }));
        invalidState(() => p.attachSocket(sock));
        invalidState(() => p.attach());
        invalidState(() => o.map('hash_map'));
        invalidState(() => o.program('sock_len'));
        invalidState(() => o.maps);
        invalidState(() => o.load());
        invalidState(() => o.attach());
      }));
    });

    it('those errors name the map and the program they are about', () => {
      withoutFdLeak(() => {
        const o = new BpfObject(obj('test_progs')).load();
        const m = o.map('hash_map');
        const p = o.program('sock_len');
        o.close();
        const em = invalidState(() => m.lookup(1));
        assert.match(em.message, /'hash_map'/);
        const ep = invalidState(() => p.testRun({ data: FRAME }));
        assert.match(ep.message, /'sock_len'/);
      });
    });

    it('a closed standalone map or program throws TypeError ERR_INVALID_STATE', () => {
      withoutFdLeak(() => withSocket((sock) => {
        const m = BpfMap.create({ type: 'hash', keySize: 4, valueSize: 4, maxEntries: 4 });
        m.update(1, 1);
        m.close();
        assert.equal(m.closed, true);
        invalidState(() => m.lookup(1));
        invalidState(() => m.update(1, 1));
        invalidState(() => m.freeze());
        const p = dropAll();
        p.close();
        assert.equal(p.closed, true);
        invalidState(() => p.testRun({ data: FRAME }));
        invalidState(() => p.attachSocket(sock));
      }));
    });

    it('a second close() of an object, a map or a program is harmless, even after its fd number is reused', () => {
      withoutFdLeak(() => {
        const o1 = new BpfObject(obj('test_progs')).load();
        o1.close();
        const o2 = new BpfObject(obj('test_progs')).load();
        try {
          o1.close();
          o2.map('hash_map').update(1, 1);
          assert.equal(o2.map('hash_map').lookup(1), 1n);
          assert.equal(o2.program('sock_len').testRun({ data: FRAME }).retval, FRAME.length - 14);
        } finally {
          o2.close();
          o2.close();
        }

        const m1 = BpfMap.create({ type: 'hash', keySize: 4, valueSize: 4, maxEntries: 4 });
        const fd = m1.fd;
        m1.close();
        const m2 = BpfMap.create({ type: 'hash', keySize: 4, valueSize: 4, maxEntries: 4 });
        try {
          assert.equal(m2.fd, fd); // the lowest free fd: the one m1 had
          m1.close();
          m2.update(1, 7);
          assert.deepEqual(m2.lookup(1), Buffer.from([7, 0, 0, 0]));
        } finally {
          m2.close();
          m2.close();
        }

        const p1 = dropAll();
        const pfd = p1.fd;
        p1.close();
        const p2 = dropAll();
        try {
          assert.equal(p2.fd, pfd);
          p1.close();
          assert.equal(p2.testRun({ data: FRAME }).retval, 0);
        } finally {
          p2.close();
          p2.close();
        }
      });
    });

    it('detach() and close() of a link, twice, are harmless; closing the object detaches its links', () => {
      withoutFdLeak(() => {
        // A socket filter link of a standalone program.
        const p = dropAll();
        try {
          withSocket((sock) => {
            const l = p.attachSocket(sock);
            assert.equal(l.attached, true);
            assert.equal(l.type, 'socket_filter');
            assert.deepEqual(p.links, [l]);
            l.detach();
            assert.equal(l.attached, false);
            assert.deepEqual(p.links, []);
            l.detach();
            l.close();
            l.close();
            assert.equal(l.attached, false);
            // The program is still usable and attaches again.
            const again = p.attachSocket(sock);
            assert.equal(again.attached, true);
            again.close();
          });
        } finally {
          p.close();
          p.close();
        }

        // A tracepoint link of an object's program: a kernel bpf_link where
        // the kernel has perf_event links (5.15, with BPF cookies), the perf
        // event's fd before.
        const o = new BpfObject(obj('test_progs')).load();
        try {
          const prog = o.program('count_getppid');
          const l1 = prog.attach();
          assert.equal(l1.id !== undefined && l1.id > 0, PERF_LINKS, `link id ${l1.id}`);
          l1.detach();
          l1.detach();
          l1.close();
          assert.equal(l1.attached, false);
          const l2 = prog.attach();
          o.close();
          assert.equal(l2.attached, false);
          l2.detach();
          l2.close();
          o.close();
        } finally {
          o.close();
        }
      });
    });

    it('obj[Symbol.dispose]() closes like close()', () => {
      withoutFdLeak(() => {
        const o = new BpfObject(obj('test_progs')).load();
        const m = o.map('array_map');
        const l = o.program('count_getppid').attach();
        o[Symbol.dispose]();
        assert.equal(o.state, 'closed');
        assert.equal(l.attached, false);
        invalidState(() => m.lookup(0));
        invalidState(() => o.map('array_map'));
        o[Symbol.dispose]();
        o.close();
        const s = BpfMap.create({ type: 'array', keySize: 4, valueSize: 4, maxEntries: 1 });
        s[Symbol.dispose]();
        invalidState(() => s.lookup(0));
        const p = dropAll();
        p[Symbol.dispose]();
        invalidState(() => p.testRun({ data: FRAME }));
      });
    });
  });

  describe('unknown names and misuse before load()', () => {
    it("obj.map('nope') and obj.program('nope'): TypeError ERR_INVALID_ARG_VALUE listing the names there are", () => {
      withoutFdLeak(() => {
        const o = new BpfObject(obj('test_progs'));
        try {
          const em = throwsWith(() => o.map('nope'), { code: 'ERR_INVALID_ARG_VALUE' }, TypeError);
          assert.ok(em.message.includes('nope'), em.message);
          assert.ok(o.maps.size >= 6);
          for (const name of o.maps.keys()) assert.ok(em.message.includes(name), `${name} not in: ${em.message}`);
          for (const name of ['array_map', 'hash_map', 'percpu_array_map', 'percpu_hash_map', 'lru_hash_map', 'getppid_calls']) {
            assert.ok(em.message.includes(name), `${name} not in: ${em.message}`);
          }
          const ep = throwsWith(() => o.program('nope'), { code: 'ERR_INVALID_ARG_VALUE' }, TypeError);
          assert.ok(ep.message.includes('nope'), ep.message);
          for (const name of ['xdp_parity', 'sock_len', 'count_getppid', 'raw_getppid']) {
            assert.ok(ep.message.includes(name), `${name} not in: ${ep.message}`);
          }
          throwsWith(() => o.map(1 as never), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
        } finally {
          o.close();
        }
      });
    });

    it('element operations and attach before load(): TypeError ERR_INVALID_STATE', () => {
      withoutFdLeak(() => withSocket((sock) => {
        const o = new BpfObject(obj('test_progs'));
        try {
          const m = o.map('hash_map');
          assert.equal(m.fd, -1);
          assert.equal(m.id, 0);
          invalidState(() => m.lookup(1));
          invalidState(() => m.update(1, 1));
          invalidState(() => [...m.keys()]);
          invalidState(() => m.freeze());
          const p = o.program('count_getppid');
          assert.equal(p.fd, -1);
          invalidState(() => p.attach());
          invalidState(() => o.program('sock_len').attachSocket(sock));
          invalidState(() => o.program('sock_len').testRun({ data: FRAME }));
          invalidState(() => o.attach());
          // None of this spoiled the object: it loads and works.
          o.load();
          m.update(1, 1);
          assert.equal(m.lookup(1), 1n);
        } finally {
          o.close();
        }
      }));
    });

    it('BpfMap.create() with bad options: TypeError/RangeError before the kernel, BpfError EINVAL from it', () => {
      withoutFdLeak(() => {
        const ok = { type: 'hash', keySize: 4, valueSize: 8, maxEntries: 4 } as const;
        throwsWith(() => BpfMap.create({ ...ok, type: 'nope' as never }), { code: 'ERR_INVALID_ARG_VALUE' }, TypeError);
        throwsWith(() => BpfMap.create({ ...ok, type: 'unspec' }), { code: 'ERR_INVALID_ARG_VALUE' }, TypeError);
        throwsWith(() => BpfMap.create({ ...ok, keySize: -1 }), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
        throwsWith(() => BpfMap.create({ ...ok, keySize: 1.5 }), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
        throwsWith(() => BpfMap.create({ ...ok, maxEntries: 2 ** 32 }), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
        throwsWith(() => BpfMap.create({ ...ok, keySize: '4' as never }), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
        throwsWith(() => BpfMap.create(null as never), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
        const e = bpfError(() => BpfMap.create({ ...ok, keySize: 0 }), { code: 'EINVAL', errno: 22, op: 'bpf_map_create' });
        assert.match(e.message, /bpf_map_create/);
        bpfError(() => BpfMap.create({ ...ok, maxEntries: 0 }), { code: 'EINVAL', op: 'bpf_map_create' });
        bpfError(() => BpfMap.create({ ...ok, type: 'array', keySize: 8 }), { code: 'EINVAL', op: 'bpf_map_create' });
      });
    });
  });

  describe('the success path leaks nothing either', () => {
    it('50 times open + load + close of test_progs, 200 times create + use + close of a map', () => {
      withoutFdLeak(() => {
        for (let i = 0; i < 50; i++) {
          const o = new BpfObject(obj('test_progs'));
          o.load();
          o.map('array_map').update(0, i);
          o.close();
        }
        for (let i = 0; i < 200; i++) {
          const m = BpfMap.create({ type: i % 2 ? 'hash' : 'array', keySize: 4, valueSize: 8, maxEntries: 4 });
          m.update(1, i);
          assert.deepEqual(m.lookup(1), Buffer.from([i, 0, 0, 0, 0, 0, 0, 0]));
          m.close();
        }
      });
    });
  });
});
