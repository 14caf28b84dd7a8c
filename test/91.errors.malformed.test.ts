import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { BpfError, BpfObject } from '../ts/index.js';
import { BPF_DIR, ROOT, obj } from './helpers.js';
import { Editor, KIND, malformedCases, type MalformedCase } from './fixtures/malformed/cases.js';

// Malformed objects (issue 11): each case below crashed, hung or corrupted the
// heap of libbpf 1.1.2 (see `libbpf` in fixtures/malformed/cases.ts). Now the
// object check refuses them before libbpf reads them, with a BpfError
// (LIBBPF_ERRNO__FORMAT) that says what is wrong. The opens run in a child
// process, so that a regression fails these tests instead of killing mocha.

interface Outcome {
  name: string;
  how: 'buffer' | 'path';
  opened: boolean;
  loaded?: boolean;
  error?: { cls: string; code?: string; errno?: number; op?: string; target?: string; message: string; log?: string };
}

const CHILD = `
const { BpfObject, BpfError } = require(${JSON.stringify(path.join(ROOT, 'dist', 'ts', 'index.js'))});
const fs = require('fs');
const out = [];
for (const [name, file] of JSON.parse(process.argv[2])) {
  for (const how of ['buffer', 'path']) {
    const r = { name, how, opened: false };
    let o;
    try {
      o = how === 'buffer' ? BpfObject.fromBuffer(fs.readFileSync(file)) : new BpfObject(file);
      r.opened = true;
      o.load();
      r.loaded = true;
    } catch (e) {
      r.error = { cls: e instanceof BpfError ? 'BpfError' : e && e.constructor ? e.constructor.name : typeof e,
        code: e.code, errno: e.errno, op: e.op, target: e.target, message: String(e.message), log: e.log };
    } finally {
      if (o) o.close();
    }
    out.push(r);
  }
}
process.stdout.write(JSON.stringify(out));
`;

describe('malformed objects: a BpfError naming the problem, never a crash (issue 11)', function () {
  this.timeout(60_000);
  const dir = mkdtempSync(path.join(tmpdir(), 'libbpf-node-malformed-'));
  let cases: MalformedCase[];
  let files: Map<string, string>;
  let outcomes: Outcome[];
  let status: number | null;
  let signal: NodeJS.Signals | null;
  let stderr: string;

  before(() => {
    cases = malformedCases(BPF_DIR);
    files = new Map(cases.map((c, i) => {
      const f = path.join(dir, `case-${i}.bpf.o`);
      writeFileSync(f, c.image);
      return [c.name, f];
    }));
    const script = path.join(dir, 'open.js');
    writeFileSync(script, CHILD);
    const r = spawnSync(process.execPath, [script, JSON.stringify([...files])], { encoding: 'utf8', timeout: 45_000 });
    status = r.status;
    signal = r.signal;
    stderr = r.stderr;
    outcomes = r.status === 0 ? JSON.parse(r.stdout) as Outcome[] : [];
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it('the child that opens them all exits normally', () => {
    assert.equal(signal, null, `the child died of ${signal}: ${stderr}`);
    assert.equal(status, 0, `the child exited with ${status}: ${stderr}`);
    assert.equal(outcomes.length, cases.length * 2);
  });

  for (const c of malformedCases(BPF_DIR)) {
    it(`${c.name} (libbpf 1.1.2: ${c.libbpf}): refused from a Buffer and from a path`, () => {
      const mine = outcomes.filter((o) => o.name === c.name);
      assert.equal(mine.length, 2, `the child did not report '${c.name}'`);
      for (const o of mine) {
        assert.equal(o.opened, false, `${o.how}: opened`);
        const e = o.error!;
        assert.equal(e.cls, 'BpfError', `${o.how}: ${e.cls}: ${e.message}`);
        assert.equal(e.errno, 4001);
        assert.equal(e.code, 'LIBBPF_ERRNO__FORMAT');
        assert.equal(e.op, o.how === 'buffer' ? 'bpf_object__open_mem' : 'bpf_object__open_file');
        assert.equal(e.target, o.how === 'buffer' ? '<buffer>' : files.get(c.name));
        assert.match(e.message, c.expect, `${o.how}: ${e.message}`);
        assert.match(e.message, /failed: LIBBPF_ERRNO__FORMAT \(BPF object format invalid\): \S/);
        assert.match(e.log ?? '', c.expect);
      }
    });
  }

  // The same checks in this process, where nothing reaches libbpf: they
  // name the object a Buffer was given as, and hold for every object in bpf/.
  it('a name given to fromBuffer() is the target; every object in bpf/ passes the check', () => {
    const c = malformedCases(BPF_DIR)[0]!;
    let caught: unknown;
    try {
      BpfObject.fromBuffer(c.image, { name: 'broken' });
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof BpfError, String(caught));
    assert.equal(caught.target, 'broken');
    assert.equal(caught.op, 'bpf_object__open_mem');
    for (const f of ['attach_test', 'big_reject', 'config', 'execsnoop', 'globals_test', 'iter_test', 'kprobe_test', 'net_test',
      'perf_test', 'ring_test', 'runqlat', 'sock_example', 'stream_test', 'syscall_test', 'test_progs', 'types_test',
      'uprobe_count', 'verifier_reject']) {
      BpfObject.fromBuffer(readFileSync(obj(f))).close();
    }
  });

  it('an empty Buffer: a BpfError that says so', () => {
    assert.throws(() => BpfObject.fromBuffer(Buffer.alloc(0)), (e: unknown) => {
      assert.ok(e instanceof BpfError, String(e));
      assert.equal(e.op, 'bpf_object__open_mem');
      assert.match(e.message, /the object is empty/);
      return true;
    });
  });

  it('ELF damage: section headers beyond the file, a relocation section of the wrong entry size', () => {
    const shoff = (e: Editor): number => Number(e.image.readBigUInt64LE(0x28));
    {
      const e = new Editor(obj('test_progs'));
      e.image.writeBigUInt64LE(BigInt(e.image.length - 128), 0x28);
      assert.throws(() => BpfObject.fromBuffer(e.image), /ELF header: the table of \d+ section headers at offset \d+ ends beyond the \d+-byte object/);
    }
    {
      // libbpf 1.1.2 fails this one without a word (-LIBBPF_ERRNO__FORMAT)
      const e = new Editor(obj('test_progs'));
      const rel = e.sections.find((s) => s.type === 9 && !s.name.includes('BTF'))!;
      e.image.writeBigUInt64LE(24n, shoff(e) + 64 * rel.index + 56);
      assert.throws(() => BpfObject.fromBuffer(e.image), (err: unknown) => {
        assert.ok(err instanceof BpfError);
        assert.match(err.message, new RegExp(`ELF section ${rel.index} \\('${rel.name.replace(/[/.]/g, '\\$&')}'\\): relocation size 24 \\(16 in a 64-bit object\\)`));
        return true;
      });
    }
    {
      const e = new Editor(obj('test_progs'));
      const sym = e.symbol('sock_count');
      e.image.writeUInt16LE(0xfe00, sym + 6);
      assert.throws(() => BpfObject.fromBuffer(e.image), /ELF symbol \d+ \('sock_count'\): its section 65024 is beyond the last section \d+/);
    }
  });

  it('BTF damage that libbpf 1.1 takes without a check: a struct containing itself, a FUNC whose type is no FUNC_PROTO', () => {
    {
      const e = new Editor(obj('config'));
      const def = e.image.readUInt32LE(e.rec(e.type(KIND.VAR, 'shared_counter')) + 8);
      e.image.writeUInt32LE(def, e.rec(def) + 12 + 12 + 4); // member 1 ('key') of the struct itself
      assert.throws(() => BpfObject.fromBuffer(e.image), new RegExp(`BTF type ${def} \\(STRUCT\\): reference loop ${def} -> ${def} \\(not through a pointer`));
    }
    {
      const e = new Editor(obj('config'));
      const f = e.type(KIND.FUNC, 'read_config');
      e.image.writeUInt32LE(e.type(KIND.INT, 'int'), e.rec(f) + 8);
      assert.throws(() => BpfObject.fromBuffer(e.image), new RegExp(`BTF type ${f} \\(FUNC 'read_config'\\): its type \\d+ is INT, not a FUNC_PROTO`));
    }
  });

  it('a malformed btfCustomPath is refused at open, naming the file (btf__parse)', () => {
    const e = new Editor(obj('config'));
    const btf = e.section('.BTF');
    const f = e.type(KIND.FUNC, 'read_config');
    e.image.writeUInt32LE(0x7fff0000, e.rec(f)); // name offset
    const file = path.join(dir, 'custom.btf');
    writeFileSync(file, e.image.subarray(btf.offset, btf.offset + btf.size));
    assert.throws(() => new BpfObject(obj('execsnoop'), { btfCustomPath: file }), (err: unknown) => {
      assert.ok(err instanceof BpfError, String(err));
      assert.equal(err.op, 'btf__parse');
      assert.equal(err.target, file);
      assert.match(err.message, /its name is at string offset 2147418112, beyond the \d+-byte string section/);
      return true;
    });
  });
});
