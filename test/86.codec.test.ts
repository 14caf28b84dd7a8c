// Codecs generated from BTF, against values the kernel side wrote (fill)
// and read back (check): every kind, nested structs, unions, arrays,
// enums and bitfields.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { BpfMap, BpfObject, BpfProgram, Btf, codecFor, type PerCpu } from '../ts/index.js';
import { bpftool, ensureBpffs, obj, pinPath } from './helpers.js';

// types_test's programs are socket filters: a test run takes at least an Ethernet header.
const FRAME = Buffer.alloc(64);

interface Inner { a: number; b: number }
interface Sample {
  u8v: number; s16v: number; u32v: number; s64v: bigint; u64v: bigint; flag: boolean; name: string;
  arr: Uint16Array; color: number; nested: Inner; un: { as_u32: number; bytes: Uint8Array };
  bf_a: number; bf_b: number; bf_c: number; ptr: bigint; inners: Inner[];
}

describe('codecs from BTF', function () {
  let o: BpfObject;
  before(() => {
    o = new BpfObject(obj('types_test')).load();
  });
  after(() => o.close());

  it('decode: reads every field the kernel wrote', function () {
    assert.equal(o.program('fill').testRun({ data: FRAME }).retval, 0);
    const codec = codecFor<Sample>(o.btf!, 'struct sample');
    assert.equal(codec.size, 88);
    const s = codec.decode(o.map('samples').raw.lookup(0) as Buffer);
    assert.deepEqual(s, {
      u8v: 200, s16v: -1234, u32v: 4000000000, s64v: -5000000000n, u64v: 18000000000000000000n, flag: true,
      name: 'kernel-side', arr: new Uint16Array([1, 2, 65535, 4]), color: 4, nested: { a: 7, b: -8 },
      un: { as_u32: 0x04030201, bytes: new Uint8Array([1, 2, 3, 4]) }, bf_a: 5, bf_b: 17, bf_c: -33,
      ptr: 0xffff888012345678n, inners: [{ a: 0, b: 0 }, { a: 11, b: -12 }],
    });
    assert.equal(codec.enums.get('enum color')?.get(4), 'BLUE');
  });

  it('encode: the kernel reads back what JavaScript wrote (enum by name, bitfields, nested, arrays)', function () {
    const codec = codecFor<Partial<Sample> | Record<string, unknown>>(o.btf!, 'struct sample');
    const value = {
      u8v: 9, s16v: -2, u32v: 1030, s64v: -3n, flag: true, name: 'abcdefgh', arr: [0, 0, 0, 6], color: 'GREEN',
      nested: { b: -1 }, un: { bytes: [0, 0, 9, 0] }, bf_a: 7, bf_b: 31, bf_c: -64, ptr: 0x1234n, inners: [{ a: 100 }],
    };
    o.map('samples').update(1, codec.encode(value));
    const expected = 9 + -2 * 3 + (1030 & 0x3ff) * 5 + Number(BigInt.asUintN(64, -3n) & 0x3ffn) * 7 + 11 +
      'a'.charCodeAt(0) * 13 + 'e'.charCodeAt(0) * 17 + 6 * 19 + 2 * 23 + -1 * 29 + 9 * 31 + 7 * 37 + 31 * 41 +
      -64 * 43 + 100 * 47 + 0x34 * 53;
    assert.equal(o.program('check').testRun({ data: FRAME }).retval | 0, expected);
    // and decode is its inverse
    const back = codec.decode(codec.encode(value)) as Sample;
    assert.equal(back.color, 2);
    assert.equal(back.bf_c, -64);
    assert.equal(back.name, 'abcdefgh');
  });

  it('encode rejects what does not fit, and writes nothing', function () {
    const codec = codecFor(o.btf!, 'struct sample');
    const bad: [Record<string, unknown>, string, string][] = [
      [{ u8v: 256 }, 'RangeError', 'ERR_OUT_OF_RANGE'],
      [{ s16v: -40000 }, 'RangeError', 'ERR_OUT_OF_RANGE'],
      [{ bf_a: 8 }, 'RangeError', 'ERR_OUT_OF_RANGE'],
      [{ bf_c: 64 }, 'RangeError', 'ERR_OUT_OF_RANGE'],
      [{ name: 'x'.repeat(17) }, 'RangeError', 'ERR_OUT_OF_RANGE'],
      [{ arr: [1, 2, 3, 4, 5] }, 'RangeError', 'ERR_OUT_OF_RANGE'],
      [{ color: 'PURPLE' }, 'TypeError', 'ERR_INVALID_ARG_VALUE'],
      [{ nope: 1 }, 'TypeError', 'ERR_INVALID_ARG_VALUE'],
      [{ u32v: '1' }, 'TypeError', 'ERR_INVALID_ARG_TYPE'],
      [{ u32v: 1.5 }, 'RangeError', 'ERR_OUT_OF_RANGE'],
    ];
    for (const [v, name, code] of bad) assert.throws(() => codec.encode(v), { name, code }, JSON.stringify(v));
  });

  it('is compiled once per type, and decodes fast (no tree walk per value)', function () {
    const btf = o.btf!;
    assert.equal(codecFor(btf, 'struct sample'), codecFor(btf, 'struct sample'));
    const k = Btf.kernel();
    const task = codecFor<Record<string, unknown>>(k, 'struct task_struct');
    assert.ok(Object.keys(task.decode(Buffer.alloc(task.size))).length > 100);
  });

  it('a BTF-defined map decodes keys and values: lookup({..}) gives objects, per-CPU maps an array, map.raw gives Buffers', function () {
    o.program('fill').testRun({ data: FRAME });
    const t = o.map<number, Sample>('samples');
    assert.equal(t.decoded, true);
    assert.equal(t.keyType, '__u32');
    assert.equal(t.valueType, 'struct sample');
    const s = t.lookup(0)!;
    assert.equal(s.name, 'kernel-side');
    assert.equal(s.bf_c, -33);
    assert.equal(s.s64v, -5000000000n);
    t.update(1, { name: 'typed', color: 'RED' } as unknown as Sample);
    assert.equal(t.lookup(1)!.color, 1);
    assert.deepEqual([...t.keys()], [0, 1]);
    assert.deepEqual([...t.entries()].map(([k, v]) => [k, v.name]), [[0, 'kernel-side'], [1, 'typed']]);
    assert.deepEqual([...t.values()].map((v) => v.color), [4, 1]);
    // Raw bytes still work: a Buffer key is the key's bytes, map.raw gives Buffers.
    const key1 = Buffer.alloc(4);
    key1.writeUInt32LE(1);
    assert.equal(t.lookup(key1)!.name, 'typed');
    const bytes = t.raw.lookup(1);
    assert.ok(Buffer.isBuffer(bytes) && bytes.length === 88);
    assert.deepEqual(codecFor<Sample>(o.btf!, 'struct sample').decode(bytes), t.lookup(1));
    t.update(0, bytes); // a Buffer value is written as is
    assert.deepEqual(t.lookup(0), t.lookup(1));
    assert.equal(t.raw.raw, t.raw);
    assert.equal(t.raw.decoded, false);
    assert.throws(() => t.update(1, { name: 'x'.repeat(20) } as unknown as Sample), { code: 'ERR_OUT_OF_RANGE' });
    assert.equal(t.lookup(1)!.name, 'typed', 'a failed encode writes nothing');
    assert.throws(() => t.lookup({ nope: 1 } as unknown as number), { name: 'TypeError', message: /^key must be/ });
    assert.throws(() => t.update(1, { nested: { a: -1 } }), { code: 'ERR_OUT_OF_RANGE', message: /^value\.nested\.a must be >= 0/ });
    const p = new BpfObject(obj('test_progs')).load();
    try {
      const pc = p.map<bigint, PerCpu<number>>('percpu_hash_map'); // u64 -> u32 per CPU
      pc.update(5n, 9);
      const v = pc.lookup(5n)!;
      assert.ok(Array.isArray(v) && v.length >= 1 && v.every((x) => x === 9));
      pc.update(6n, v.map((_, cpu) => cpu + 100));
      assert.deepEqual(pc.lookup(6n), v.map((_, cpu) => cpu + 100));
      assert.deepEqual([...pc.entries()].map(([k]) => k).sort(), [5n, 6n]);
      assert.ok(pc.raw.lookup(5n)!.every((b) => Buffer.isBuffer(b) && b.readUInt32LE() === 9));
      assert.equal(pc.lookup(7n), undefined);
      assert.equal(pc.delete(5n), true);
    } finally {
      p.close();
    }
  });

  it('a map that bpftool loaded and pinned decodes through the BTF the kernel holds for it, and bpftool reads what we encode', function () {
    ensureBpffs();
    const dir = pinPath('bpftool-types');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    execFileSync('bpftool', ['prog', 'loadall', obj('types_test'), `${dir}/progs`, 'pinmaps', `${dir}/maps`]);
    try {
      const fill = BpfProgram.fromPin(`${dir}/progs/fill`);
      assert.equal(fill.testRun({ data: FRAME }).retval, 0);
      fill.close();
      const m = BpfMap.fromPin<number, Sample>(`${dir}/maps/samples`);
      try {
        assert.equal(m.decoded, true);
        assert.equal(m.valueType, 'struct sample');
        const s = m.lookup(0)!;
        assert.deepEqual([s.u8v, s.s16v, s.s64v, s.name, s.bf_c, s.nested], [200, -1234, -5000000000n, 'kernel-side', -33, { a: 7, b: -8 }]);
        m.update(1, { ...s, name: 'from-node', color: 2, bf_a: 6, inners: [{ a: 1, b: -1 }, { a: 2, b: -2 }] });
        type Formatted = { formatted: { value: Record<string, unknown> } };
        const seen = bpftool<Formatted>('map', 'lookup', 'pinned', `${dir}/maps/samples`, 'key', '1', '0', '0', '0').formatted.value;
        assert.equal(seen.name, 'from-node');
        assert.equal(seen.color, 'GREEN'); // bpftool names enum values
        assert.equal(seen.s16v, -1234);
        assert.equal(Number(seen.bf_a), 6);
        assert.deepEqual(seen.inners, [{ a: 1, b: -1 }, { a: 2, b: -2 }]);
      } finally {
        m.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('queues, stacks and key_size maps decode with their declared types, the same before and after load()', function () {
    const t = new BpfObject(obj('types_test'));
    try {
      // Worked out before load, when libbpf still has the type ids it
      // zeroes at load for these map types.
      const queue = t.map<Buffer, Inner>('inner_queue');
      const stack = t.map<Buffer, Inner>('inner_stack');
      const sized = t.map<Buffer, bigint>('sized_key');
      assert.deepEqual([queue.decoded, stack.decoded, sized.decoded], [true, true, true]);
      assert.equal(sized.keyType, undefined, 'no key type: keys stay Buffers');
      t.load();
      assert.equal(queue.btfValueTypeId, 0, 'libbpf created the queue without BTF');
      assert.equal(t.program('push_inner').testRun({ data: FRAME }).retval, 0);
      queue.update(null, { a: 5, b: -6 });
      assert.deepEqual(queue.lookupAndDelete(null), { a: 21, b: -22 }, 'the kernel pushed this one first');
      assert.deepEqual(queue.lookupAndDelete(null), { a: 5, b: -6 });
      assert.equal(queue.lookupAndDelete(null), undefined);
      stack.update(null, { a: 7 });
      assert.deepEqual(stack.lookupAndDelete(null), { a: 7, b: 0 });
      assert.deepEqual(stack.lookupAndDelete(null), { a: 31, b: -22 });
      assert.deepEqual([...sized.entries()], [[Buffer.from([1, 0, 0, 0]), 1234567890123n]]);
      sized.update(2, 5n); // a raw key: a number written in the host's byte order
      assert.equal(sized.lookup(2), 5n);
    } finally {
      t.close();
    }
    // A fresh object, untouched before load, decodes the same.
    const u = new BpfObject(obj('types_test')).load();
    try {
      assert.equal(u.program('push_inner').testRun({ data: FRAME }).retval, 0);
      assert.deepEqual(u.map('inner_queue').lookupAndDelete(null), { a: 21, b: -22 });
      assert.equal(u.map('sized_key').lookup(1), 1234567890123n);
    } finally {
      u.close();
    }
  });

  it('array-valued types: per-CPU u64[2] takes one array per CPU or one for all; struct inner[2] is one value', function () {
    const t = new BpfObject(obj('types_test')).load();
    try {
      const cpus = t.map('percpu_pairs').raw.lookup(0)!.length as number;
      const pc = t.map<number, PerCpu<BigUint64Array>>('percpu_pairs');
      pc.update(0, [3n, 4n]); // elements are not arrays: one value for every CPU
      assert.deepEqual(pc.lookup(0), Array.from({ length: cpus }, () => new BigUint64Array([3n, 4n])));
      const each = Array.from({ length: cpus }, (_, c) => [BigInt(c), BigInt(c + 100)]);
      pc.update(1, each); // an array of arrays: one per CPU
      assert.deepEqual(pc.lookup(1), each.map((v) => new BigUint64Array(v)));
      // one array more than there are CPUs (a single one would be right on a 1-CPU machine)
      assert.throws(() => pc.update(1, Array.from({ length: cpus + 1 }, () => [1n, 2n])), { code: 'ERR_INVALID_ARG_VALUE', message: /one value per possible CPU/ });
      const pairs = t.map<number, Inner[]>('inner_pairs');
      pairs.update(1, [{ a: 1, b: -1 }, { a: 2, b: -2 }]);
      assert.deepEqual(pairs.lookup(1), [{ a: 1, b: -1 }, { a: 2, b: -2 }]);
      const raw: Buffer | undefined = pairs.raw.lookup(1);
      assert.ok(Buffer.isBuffer(raw) && raw.length === 8);
    } finally {
      t.close();
    }
  });

  it('a pinned global data section opens raw (its DATASEC value is read through obj.bss)', function () {
    const g = new BpfObject(obj('globals_test')).load();
    const p = pinPath('bss');
    try {
      const bss = [...g.maps.values()].find((m) => m.name.endsWith('.bss'))!;
      assert.equal(bss.decoded, false);
      bss.pin(p);
      const pinned = BpfMap.fromPin(p);
      try {
        assert.equal(pinned.decoded, false);
        assert.equal(pinned.valueType, undefined);
        const bytes = pinned.lookup(0);
        assert.ok(Buffer.isBuffer(bytes) && bytes.length === bss.valueSize);
      } finally {
        pinned.close();
      }
    } finally {
      rmSync(p, { force: true });
      g.close();
    }
  });

  it('a closed raw view is the closed map: closing either closes both, and neither crashes', function () {
    const m = BpfMap.create({ type: 'hash', keySize: 4, valueSize: 4, maxEntries: 4 });
    assert.equal(m.decoded, false);
    assert.equal(m.btf, null);
    m.raw.close(); // the view shares the map's fd
    assert.equal(m.closed, true);
    assert.throws(() => m.lookup(0), { code: 'ERR_INVALID_STATE' });
    const p = new BpfObject(obj('test_progs')).load();
    const h = p.map('hash_map');
    const raw = h.raw;
    p.close();
    assert.equal(raw.closed, true);
    assert.throws(() => raw.lookup(0), { code: 'ERR_INVALID_STATE' });
    assert.throws(() => h.lookup(0), { code: 'ERR_INVALID_STATE' });
    m.close();
  });

  it('ring buffer records decode by type name (execsnoop: struct event, from execsnoop_types.bpf.o)', function () {
    const codec = codecFor<{ pid: number; comm: string; args: string }>(Btf.fromFile(obj('execsnoop_types')), 'struct event');
    assert.equal(codec.size, 7720);
    assert.equal(codec.minSize, 40);
    const raw = Buffer.alloc(7720);
    raw.writeUInt32LE(42, 0);
    raw.write('bash', 24);
    raw.write('/bin/ls\0-l\0', 40);
    assert.deepEqual([codec.decode(raw).pid, codec.decode(raw).comm, codec.decode(raw).args], [42, 'bash', '/bin/ls']);
    // what execsnoop sends: sizeof(e) - unused
    assert.deepEqual(codec.decodeRecord(raw.subarray(0, 40 + 11)), { ...codec.decode(raw), args: '/bin/ls' });
    assert.equal(codec.decodeRecord(raw.subarray(0, 44)).args, '/bin');
  });
});
