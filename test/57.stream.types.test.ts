// Records typed from outside their object: a type from another BTF
// (Btf.fromFile of a types file compiled once from the shared header) or a
// layout declared in TypeScript (struct()), and variable-length records
// (only the used part of a struct with a trailing array is sent), as the
// tools people copy send them. varlen_test.bpf.o sends struct event
// (bpf/varlen.h, a type only in the header) through a ring buffer and a
// perf buffer with lengths the test chooses; execsnoop.bpf.o sends
// sizeof(e) - unused bytes of its struct event (bpf/execsnoop.h).
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  BpfObject, Btf, PerfBuffer, RingBuffer, array, codecFor, features, struct, type LayoutValue,
} from '../ts/index.js';
import { ensureTracefs, itIf, obj, openFds, throwsWith } from './helpers.js';

const COMM = readFileSync('/proc/self/comm', 'utf8').trim();
const TEXT = 'hello world';
// lens[seq % 8]: short (cuts flags), whole, short (cuts nr), text cut to
// 'hell', short (cuts comm), the text and its NUL only, short (cuts nr), whole.
// Cut lengths are 4 mod 8: a perf sample then carries no padding.
const LENS = [4, 88, 12, 44, 36, 52, 20, 88];
const GOOD: Record<number, string> = { 1: TEXT, 3: 'hell', 5: TEXT, 7: TEXT };
const SHORT: Record<number, RegExp> = {
  0: /^a 4-byte record is too short for struct event \(40 bytes, at least 40 needed\): it ends inside member 'flags' \(bytes 4\.\.5\)$/,
  2: /^a 12-byte record is too short for struct event .*inside member 'nr' \(bytes 16\.\.23\)$/,
  4: /^a 36-byte record is too short for struct event .*inside member 'comm' \(bytes 24\.\.39\)$/,
  6: /^a 20-byte record is too short for struct event .*inside member 'nr' \(bytes 16\.\.23\)$/,
};

// struct event of varlen.h, declared in TypeScript.
const Event = struct({ seq: 'u32', flags: 'u16', pid: 'u32', nr: 'u64', comm: 'char[16]', text: 'char[]' }, { name: 'event' });
type Event = LayoutValue<typeof Event>;

const types = (): Btf => Btf.fromFile(obj('varlen_types'));

function checkEvent(e: Event, seq: number): void {
  assert.equal(e.seq, seq);
  assert.equal(e.flags, 0xa5);
  assert.equal(e.pid, process.pid);
  assert.equal(e.nr, 0x1_0000_0000n + BigInt(seq));
  assert.equal(e.comm, COMM);
  assert.equal(e.text, GOOD[seq % 8], `record ${seq}'s text`);
}

function loadVarlen(): BpfObject {
  const o = new BpfObject(obj('varlen_test'));
  o.rodata.targ_tgid = process.pid;
  o.rodata.lens = LENS;
  o.data.text = TEXT;
  return o.load();
}

const getppid = (n: number): void => {
  for (let i = 0; i < n; i++) void process.ppid; // each read is a getppid(2)
};

async function take<T>(it: AsyncIterable<T>, n: number): Promise<T[]> {
  const out: T[] = [];
  if (n === 0) return out;
  for await (const v of it) {
    out.push(v);
    if (out.length === n) break;
  }
  return out;
}

describe('types from outside the object: Btf.fromFile and struct() layouts', function () {
  it('the header-only type is not in the object\'s BTF; Btf.fromFile finds it in the types file', function () {
    const o = new BpfObject(obj('varlen_test'));
    try {
      assert.equal(o.btf!.find('struct event'), undefined);
      const btf = types();
      const t = btf.find('struct event');
      assert.ok(t && t.kind === 'struct');
      assert.equal(btf.sizeof(t.id), 40);
    } finally {
      o.close();
    }
  });

  it('a struct() layout lays fields out as clang does (offsets, padding, size) and decodes like the BTF codec', function () {
    const btf = types();
    for (const [name, layout] of [
      ['struct event', Event],
      ['struct numbers', struct({ count: 'u32', kind: 'u8', vals: 'u32[16]' }, { name: 'numbers' })],
    ] as const) {
      const t = btf.find(name);
      assert.ok(t && t.kind === 'struct');
      assert.deepEqual(layout.offsets, Object.fromEntries(t.members.map((m) => [m.name, m.bitOffset / 8])), name);
      assert.equal(layout.size, btf.sizeof(t.id), name);
      assert.equal(layout.typeName, name);
    }
    const bytes = Buffer.alloc(60);
    bytes.writeUInt32LE(7, 0);
    bytes.writeUInt16LE(0xa5, 4);
    bytes.writeUInt32LE(99, 8);
    bytes.writeBigUInt64LE(5n, 16);
    bytes.write('comm', 24);
    bytes.write('tail text', 40);
    const fromBtf = codecFor(btf, 'struct event');
    assert.deepEqual(Event.decodeRecord(bytes), fromBtf.decodeRecord(bytes));
    assert.deepEqual(Event.decodeRecord(bytes), { seq: 7, flags: 0xa5, pid: 99, nr: 5n, comm: 'comm', text: 'tail text' });
  });

  it('layouts: every field kind, nested structs and arrays of them, packed, encode/decode round trip', function () {
    const Point = struct({ x: 's16', y: 's16' });
    const All = struct({
      a: 'u8', b: 'u16', c: 'u32', d: 'u64', e: 's8', f: 's16', g: 's32', h: 's64', ok: 'bool', ch: 'char',
      x: 'f32', y: 'f64', name: 'char[5]', raw: 'u8[3]', words: 'u16[2]', big: 's64[2]', flags: 'bool[2]', at: Point, pts: array(Point, 2),
    });
    assert.deepEqual(All.offsets, {
      a: 0, b: 2, c: 4, d: 8, e: 16, f: 18, g: 20, h: 24, ok: 32, ch: 33, x: 36, y: 40, name: 48, raw: 53, words: 56,
      big: 64, flags: 80, at: 82, pts: 86,
    });
    assert.equal(All.size, 96);
    assert.equal(All.align, 8);
    const v = All.decode(All.encode({
      a: 1, b: 2, c: 3, d: 4n, e: -5, f: -6, g: -7, h: -8n, ok: true, ch: 65, x: 1.5, y: -2.25, name: 'abcde',
      raw: new Uint8Array([1, 2, 3]), words: new Uint16Array([9, 10]), big: new BigInt64Array([-1n, 2n]), flags: [false, true],
      at: { x: -1, y: 1 }, pts: [{ x: 3, y: 4 }, { x: 5, y: 6 }],
    }));
    assert.equal(v.d, 4n);
    assert.equal(v.h, -8n);
    assert.equal(v.name, 'abcde');
    assert.deepEqual([...v.raw], [1, 2, 3]);
    assert.ok(v.raw instanceof Uint8Array && v.words instanceof Uint16Array && v.big instanceof BigInt64Array);
    assert.deepEqual(v.flags, [false, true]);
    assert.deepEqual(v.pts, [{ x: 3, y: 4 }, { x: 5, y: 6 }]);
    assert.deepEqual([v.x, v.y, v.ok, v.ch, v.e], [1.5, -2.25, true, 65, -5]);
    const Packed = struct({ a: 'u8', b: 'u32', c: 'u16' }, { packed: true });
    assert.deepEqual([Packed.offsets, Packed.size], [{ a: 0, b: 1, c: 5 }, 7]);
    assert.deepEqual(struct({ a: 'u8', b: 'u32', c: 'u16' }).offsets, { a: 0, b: 4, c: 8 });
    assert.equal(struct({ a: 'u8', b: 'u32', c: 'u16' }).size, 12);
  });

  it('layouts: bad field types and options are TypeErrors and RangeErrors with codes', function () {
    throwsWith(() => struct({ a: 'u31' as 'u32' }), { code: 'ERR_INVALID_ARG_VALUE', message: /is not a field type/ }, TypeError);
    throwsWith(() => struct({ a: 'char[0]' as 'char[1]' }), { code: 'ERR_INVALID_ARG_VALUE' }, TypeError);
    throwsWith(() => struct({ a: 'char[]', b: 'u8' }), { code: 'ERR_INVALID_ARG_VALUE', message: /must be the last field/ }, TypeError);
    throwsWith(() => struct({ a: 'u8[2000000000]' as 'u8[1]' }), { code: 'ERR_INVALID_ARG_VALUE' }, TypeError);
    throwsWith(() => struct({ a: 5 as unknown as 'u8' }), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    throwsWith(() => struct({}), { code: 'ERR_INVALID_ARG_VALUE' }, TypeError);
    throwsWith(() => struct(null as unknown as Record<string, 'u8'>), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    throwsWith(() => struct({ a: 'u8' }, { name: 'not an identifier' }), { code: 'ERR_INVALID_ARG_VALUE' }, TypeError);
    throwsWith(() => struct({ a: 'u8' }, { packed: 'yes' as unknown as boolean }), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    throwsWith(() => array('u8', 0), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
    throwsWith(() => array(struct({ a: 'u8', t: 'u8[]' }), 2), { code: 'ERR_INVALID_ARG_VALUE' }, TypeError);
    throwsWith(() => Event.encode({ seq: -1 } as Event), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
  });

  it('Btf.fromFile: raw BTF too; a missing file, a file that is no BTF and malformed BTF are BpfErrors of btf__parse', function () {
    const kernel = Btf.fromFile('/sys/kernel/btf/vmlinux');
    assert.equal(kernel.find('struct task_struct')?.kind, 'struct');
    throwsWith(() => Btf.fromFile('/nonexistent/types.bpf.o'), { name: 'BpfError', code: 'ENOENT', op: 'btf__parse' });
    throwsWith(() => Btf.fromFile('/etc/hostname'), { name: 'BpfError', code: 'LIBBPF_ERRNO__FORMAT', op: 'btf__parse', message: /neither an ELF file nor raw BTF/ });
    throwsWith(() => Btf.fromFile(obj('ring_test').replace('ring_test.bpf.o', 'Makefile')), { code: 'LIBBPF_ERRNO__FORMAT' });
    throwsWith(() => Btf.fromFile(42 as unknown as string), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    // a struct member whose type id points past the last type
    const image = readFileSync(obj('varlen_types'));
    const btfAt = image.indexOf(Buffer.from([0x9f, 0xeb, 1, 0]));
    const hdr = image.readUInt32LE(btfAt + 4);
    const typesAt = btfAt + hdr + image.readUInt32LE(btfAt + 8);
    // type 1 is 'struct event *' (a PTR): its type field at +8
    image.writeUInt32LE(0xfffff, typesAt + 8);
    const dir = mkdtempSync(path.join(tmpdir(), 'lbn-btf-'));
    try {
      const bad = path.join(dir, 'bad.bpf.o');
      writeFileSync(bad, image);
      throwsWith(() => Btf.fromFile(bad), { name: 'BpfError', code: 'LIBBPF_ERRNO__FORMAT', op: 'btf__parse', target: bad });
      writeFileSync(bad, image.subarray(btfAt, btfAt + 64)); // raw BTF cut short
      throwsWith(() => Btf.fromFile(bad), { name: 'BpfError', code: 'LIBBPF_ERRNO__FORMAT' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('variable-length records by codec: a fixed trailing array is cut to the elements present, a cut in padding gives none', function () {
    const c = codecFor(types(), 'struct numbers');
    assert.deepEqual([c.size, c.minSize, c.variable], [72, 5, true]);
    const b = Buffer.alloc(80);
    b.writeUInt32LE(3, 0);
    b[4] = 9;
    for (let i = 0; i < 16; i++) b.writeUInt32LE(i * 10, 8 + 4 * i);
    const cut = c.decodeRecord(b.subarray(0, 8 + 4 * 3 + 2)) as { count: number; kind: number; vals: Uint32Array };
    assert.deepEqual([cut.count, cut.kind, [...cut.vals]], [3, 9, [0, 10, 20]]);
    assert.equal((c.decodeRecord(b.subarray(0, 6)) as { vals: Uint32Array }).vals.length, 0);
    assert.equal((c.decodeRecord(b) as { vals: Uint32Array }).vals.length, 16, 'bytes past the type are ignored');
    throwsWith(() => c.decodeRecord(b.subarray(0, 4)), { code: 'ERR_OUT_OF_RANGE', message: /inside member 'kind'/ }, RangeError);
    // a type without a trailing array needs all its bytes
    const fixed = codecFor(types(), 'unsigned int');
    throwsWith(() => fixed.decodeRecord(Buffer.alloc(3)), { code: 'ERR_OUT_OF_RANGE', message: /a 3-byte record is too short for unsigned int/ }, RangeError);
  });
});

describe('variable-length records through the kernel (varlen_test.bpf.o)', function () {
  const it = itIf('ringbuf', features.ringbuf());
  let o: BpfObject;
  before(() => ensureTracefs());
  beforeEach(() => {
    o = loadVarlen();
  });
  afterEach(() => o.close());

  it('RingBuffer with a type from Btf.fromFile: short, good, short, good... yields the good records field by field and hands the short ones to onError', async function () {
    const errors: { seq: number; error: Error; len: number }[] = [];
    const rb = new RingBuffer<Event>(o.map('rb'), {
      type: 'struct event', btf: types(),
      onError: (error, record) => errors.push({ seq: record.readUInt32LE(0), error, len: record.length }),
    });
    o.program('varlen_getppid').attach();
    getppid(16);
    const got = await take(rb, 8);
    assert.deepEqual(got.map((e) => e.seq), [1, 3, 5, 7, 9, 11, 13, 15]);
    for (const e of got) checkEvent(e, e.seq);
    assert.deepEqual(errors.map((e) => [e.seq, e.len]), [[0, 4], [2, 12], [4, 36], [6, 20], [8, 4], [10, 12], [12, 36], [14, 20]]);
    for (const e of errors) {
      assert.ok(e.error instanceof RangeError);
      assert.equal((e.error as RangeError & { code: string }).code, 'ERR_OUT_OF_RANGE');
      assert.match(e.error.message, SHORT[e.seq % 8]!);
    }
    assert.equal(rb.stats.decodeErrors, 8);
    assert.equal(rb.stats.records, 16);
    assert.equal(o.bss.dropped, 0n);
    rb.close();
  });

  it('PerfBuffer with a struct() layout, no onError: good records yielded, short ones counted in stats.decodeErrors with one warning', async function () {
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on('warning', onWarning);
    const pb = new PerfBuffer(o.map('pb'), { layout: Event });
    try {
      o.program('varlen_getppid').attach();
      getppid(16);
      const got = (await take(pb, 8)).map((e) => {
        assert.equal(e.lost, undefined, 'no sample lost');
        return e.data!;
      }).sort((a, b) => a.seq - b.seq);
      assert.deepEqual(got.map((e) => e.seq), [1, 3, 5, 7, 9, 11, 13, 15]);
      for (const e of got) checkEvent(e, e.seq);
      pb.consume();
      assert.equal(pb.stats.decodeErrors, 8);
      await new Promise((r) => setImmediate(r));
      const mine = warnings.filter((w) => (w as Error & { code?: string }).code === 'LIBBPF_NODE_UNDECODED_RECORD');
      assert.equal(mine.length, 1, 'one warning per stream');
      assert.match(mine[0]!.message, /^PerfBuffer: a record could not be decoded and was skipped: a \d+-byte record is too short for struct event/);
    } finally {
      process.off('warning', onWarning);
      pb.close();
    }
  });

  it('a layout with a u8 tail: the bytes present, nothing more (ring buffer records keep their exact length)', async function () {
    const Bytes = struct({ seq: 'u32', flags: 'u16', pid: 'u32', nr: 'u64', comm: 'char[16]', text: 'u8[48]' });
    let skipped = 0;
    const rb = new RingBuffer(o.map('rb'), { layout: Bytes, onError: () => void skipped++ });
    o.program('varlen_getppid').attach();
    getppid(8);
    const got = await take(rb, 4);
    const want = (n: number): number[] => [...Buffer.concat([Buffer.from(TEXT), Buffer.alloc(48)]).subarray(0, n)];
    assert.deepEqual(got.map((e) => [e.seq, [...e.text]]), [[1, want(48)], [3, want(4)], [5, want(12)], [7, want(48)]]);
    assert.ok(got[0]!.text instanceof Uint8Array);
    assert.equal(skipped, 4);
    rb.close();
  });

  it('an onError that throws ends the stream with its error; decode errors never reach the next read', async function () {
    const boom = new Error('boom');
    const rb = new RingBuffer(o.map('rb'), { layout: Event, onError: () => { throw boom; } });
    o.program('varlen_getppid').attach();
    getppid(2);
    await assert.rejects(rb.next(), boom);
    assert.equal(rb.closed, true);
  });

  it('bad options are refused before anything opens: a type missing from the object, btf without type, two decoders', function () {
    const before = openFds();
    throwsWith(() => new RingBuffer(o.map('rb'), { type: 'struct event' }), {
      code: 'ERR_INVALID_ARG_VALUE', message: /no BTF type named 'struct event' in the BTF of map 'rb's object .*opts\.btf/,
    }, TypeError);
    throwsWith(() => new RingBuffer(o.map('rb'), { type: 'struct nope', btf: types() }), { code: 'ERR_INVALID_ARG_VALUE', message: /in opts\.btf/ }, TypeError);
    throwsWith(() => new RingBuffer(o.map('rb'), { btf: types() }), { code: 'ERR_INVALID_ARG_VALUE', message: /opts\.btf needs opts\.type/ }, TypeError);
    throwsWith(() => new RingBuffer(o.map('rb'), { btf: {} as Btf, type: 'struct event' }), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    throwsWith(() => new PerfBuffer(o.map('pb'), { layout: {} as typeof Event }), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    throwsWith(() => new PerfBuffer(o.map('pb'), { layout: Event, type: 'struct event' } as never), { code: 'ERR_INVALID_ARG_VALUE', message: /exclude each other/ }, TypeError);
    throwsWith(() => new RingBuffer(o.map('rb'), { layout: Event, onError: 1 as never }), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    assert.equal(openFds(), before);
  });
});

describe('execsnoop.bpf.o: sizeof(e) - unused bytes per exec, typed from execsnoop_types.bpf.o', function () {
  const it = itIf('ringbuf', features.ringbuf());
  const ExecEvent = struct({
    pid: 's32', ppid: 's32', uid: 'u32', retval: 's32', args_count: 's32', args_size: 'u32', comm: 'char[16]', args: 'u8[7680]',
  }, { name: 'event' });
  let o: BpfObject;
  before(() => ensureTracefs());
  beforeEach(() => {
    o = new BpfObject(obj('execsnoop')).load();
  });
  afterEach(() => o.close());

  it('exec of /bin/echo with known argv and of a missing file: pid, ppid, comm, ret and argv, by type and by layout', async function () {
    assert.equal(o.btf!.find('struct event'), undefined, 'the event type is only in the header');
    const btf = Btf.fromFile(obj('execsnoop_types'));
    assert.deepEqual(ExecEvent.offsets.args, 40);
    assert.equal(ExecEvent.size, btf.sizeof(btf.find('struct event')!.id));
    interface ExecRecord { pid: number; ppid: number; uid: number; retval: number; args_count: number; args_size: number; comm: string; args: string }
    o.attach();
    const tag = `lbn-${process.pid}`;
    const missing = `/nonexistent/${tag}`;
    const argv = ['/bin/echo', 'hello', tag, 'third arg'];
    // Two execs, and their two records (a ring has one consumer position:
    // one stream at a time).
    const execTwice = async <T extends { ppid: number; pid: number }>(rb: AsyncIterable<T>): Promise<[T, T, number, number]> => {
      const ok = spawnSync('/bin/echo', argv.slice(1), { encoding: 'utf8' });
      assert.equal(ok.stdout, `hello ${tag} third arg\n`);
      const failed = spawnSync(missing, ['x']);
      assert.equal((failed.error as NodeJS.ErrnoException).code, 'ENOENT');
      const got: T[] = [];
      for await (const e of rb) if (e.ppid === process.pid && (got.push(e), got.length === 2)) break;
      return [got[0]!, got[1]!, ok.pid!, failed.pid!];
    };
    const [echo, nope, okPid, failedPid] = await execTwice(new RingBuffer<ExecRecord>(o.map('events'), { type: 'struct event', btf }));
    const [echo2, nope2, okPid2] = await execTwice(new RingBuffer(o.map('events'), { layout: ExecEvent }));
    assert.deepEqual([echo.pid, echo2.pid], [okPid, okPid2]);
    assert.equal(echo.uid, process.getuid!());
    assert.equal(echo.retval, 0);
    assert.equal(echo.comm, 'echo');
    assert.equal(echo.args_count, 4);
    assert.equal(echo.args_size, argv.join('\0').length + 1);
    assert.equal(echo.args, '/bin/echo', 'a char tail decodes as a string: up to its first NUL');
    // the layout's u8 tail: exactly the args_size bytes sent
    assert.equal(echo2.args.length, echo2.args_size);
    assert.deepEqual(Buffer.from(echo2.args).toString().split('\0').slice(0, -1), argv);
    assert.deepEqual([echo2.comm, echo2.retval, echo2.args_count], ['echo', 0, 4]);
    assert.equal(nope.retval, -2, 'ENOENT');
    // the child whose execve() failed (spawnSync reports no pid for it)
    assert.ok(nope.pid > 0 && nope.pid !== process.pid && failedPid === 0);
    assert.equal(nope.args_count, 2);
    assert.equal(nope.args, missing);
    assert.deepEqual(Buffer.from(nope2.args).toString().split('\0').slice(0, -1), [missing, 'x']);
  });

  it('map.typed(): a sized map given key and value types from another BTF or layouts', function () {
    const btf = Btf.fromFile(obj('execsnoop_types'));
    const execs = o.map('execs');
    assert.equal(execs.decoded, false);
    const byBtf = execs.typed<number, { pid: number; comm: string; args: string }>({ key: 'unsigned int', value: 'struct event', btf });
    assert.equal(byBtf.valueType, 'struct event');
    byBtf.update(0xfffffff0, { pid: 7, comm: 'typed', args: 'a' });
    const v = byBtf.lookup(0xfffffff0)!;
    assert.deepEqual([v.pid, v.comm, v.args], [7, 'typed', 'a']);
    const byLayout = execs.typed({ value: ExecEvent });
    const w = byLayout.lookup(Buffer.from([0xf0, 0xff, 0xff, 0xff]))!;
    assert.equal(w.comm, 'typed');
    assert.equal(w.args.length, 7680);
    assert.ok(Buffer.isBuffer(byLayout.raw.lookup(0xfffffff0)));
    assert.ok(byBtf.delete(0xfffffff0));
    throwsWith(() => execs.typed({ value: struct({ a: 'u32' }) }), { code: 'ERR_INVALID_ARG_VALUE', message: /is 4 bytes, map 'execs' has 7720-byte values/ }, TypeError);
    throwsWith(() => execs.typed({ value: 'struct event' }), { code: 'ERR_INVALID_ARG_VALUE', message: /no BTF type named 'struct event' in the BTF of map 'execs'/ }, TypeError);
    throwsWith(() => execs.typed({ value: 3 as unknown as string }), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
  });
});
