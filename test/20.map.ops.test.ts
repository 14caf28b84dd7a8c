import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { BpfError, BpfMap, BpfObject, features, type MapLookupResult, type MapType } from '../ts/index.js';
import { ensureBpffs, itIf, obj, pinPath, throwsWith } from './helpers.js';

// Every element operation on the five common map types, run against the
// real kernel twice per type: on a map made with BpfMap.create() and on the
// same map of the loaded test_progs object. Values are read back from the
// kernel (and, where it matters, through bpftool), never from the library's
// own bookkeeping.

/** The number of possible CPUs, from sysfs ("0-3,5,7-8"), independent of the library. */
function possibleCpus(): number {
  const text = readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim();
  let n = 0;
  for (const part of text.split(',')) {
    const [lo, hi] = part.split('-').map(Number);
    n += hi === undefined ? 1 : hi - lo! + 1;
  }
  return n;
}
const CPUS = possibleCpus();

/** `v` as `size` little-endian bytes (x86_64: the host's byte order, which the library writes). */
function le(v: bigint | number, size: number): Buffer {
  const b = Buffer.alloc(size);
  let x = BigInt.asUintN(size * 8, BigInt(v));
  for (let i = 0; i < size; i++) {
    b[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return b;
}

/** A little-endian unsigned integer. */
function num(b: Buffer): bigint {
  let x = 0n;
  for (let i = b.length - 1; i >= 0; i--) x = (x << 8n) | BigInt(b[i]!);
  return x;
}

function asBuffer(v: MapLookupResult | undefined): Buffer {
  assert.ok(Buffer.isBuffer(v), `expected a Buffer, got ${String(v)}`);
  return v;
}

function asPerCpu(v: MapLookupResult | undefined): Buffer[] {
  assert.ok(Array.isArray(v), `expected one Buffer per CPU, got ${String(v)}`);
  return v;
}

/** Every slot of a value: the one Buffer, or each CPU's. */
function slots(v: MapLookupResult | undefined): Buffer[] {
  return Array.isArray(v) ? v : [asBuffer(v)];
}

function bpftoolJson(args: readonly string[]): unknown {
  return JSON.parse(execFileSync('bpftool', [...args, '-j'], { encoding: 'utf8' })) as unknown;
}

interface BpftoolMap {
  id: number;
  name: string;
  type: string;
  flags: number;
  max_entries: number;
  bytes_key: number;
  bytes_value: number;
}

function bpftoolShow(args: readonly string[]): BpftoolMap {
  return bpftoolJson(['map', 'show', ...args]) as BpftoolMap;
}

/** bpftool's raw bytes of one element (["0x01", ...]), per CPU for per-CPU maps. */
function bpftoolLookup(id: number, key: Buffer): Buffer[] {
  const out = bpftoolJson(['map', 'lookup', 'id', String(id), 'key', 'hex', ...[...key].map((b) => b.toString(16))]) as {
    key: string[];
    value?: string[];
    values?: { cpu: number; value: string[] }[];
  };
  const bytes = (a: string[]): Buffer => Buffer.from(a.map((h) => parseInt(h, 16)));
  assert.deepEqual(bytes(out.key), key);
  if (out.values) return out.values.map((v) => bytes(v.value));
  assert.ok(out.value);
  return [bytes(out.value)];
}

function bpfError(fn: () => unknown, code: string, op?: string): BpfError {
  const props: Record<string, unknown> = { code };
  if (op !== undefined) props.op = op;
  return throwsWith(fn, props, BpfError) as BpfError;
}

interface Spec {
  /** The map's name in test_progs.bpf.c. */
  name: string;
  type: MapType;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  array: boolean;
  perCpu: boolean;
}

const SPECS: readonly Spec[] = [
  { name: 'array_map', type: 'array', keySize: 4, valueSize: 8, maxEntries: 8, array: true, perCpu: false },
  { name: 'hash_map', type: 'hash', keySize: 4, valueSize: 8, maxEntries: 64, array: false, perCpu: false },
  { name: 'percpu_array_map', type: 'percpu_array', keySize: 4, valueSize: 8, maxEntries: 4, array: true, perCpu: true },
  { name: 'percpu_hash_map', type: 'percpu_hash', keySize: 8, valueSize: 4, maxEntries: 16, array: false, perCpu: true },
  { name: 'lru_hash_map', type: 'lru_hash', keySize: 4, valueSize: 8, maxEntries: 32, array: false, perCpu: false },
];

// Byte-level behaviour, the same for a created map and for a map of an
// object seen through map.raw (decoding is tested in 86.codec).
interface Subject {
  map: BpfMap<Buffer, MapLookupResult>;
  /** The name the library reports: the kernel keeps 15 characters of a created map's name. */
  expectedName: string;
  close(): void;
}

interface Variant {
  label: string;
  make(spec: Spec): Subject;
}

const VARIANTS: readonly Variant[] = [
  {
    label: 'BpfMap.create()',
    make(spec) {
      const map: BpfMap<Buffer, MapLookupResult> = BpfMap.create({
        type: spec.type, keySize: spec.keySize, valueSize: spec.valueSize, maxEntries: spec.maxEntries, name: spec.name,
      });
      return { map, expectedName: spec.name.slice(0, 15), close: () => map.close() };
    },
  },
  {
    label: 'a map of the test_progs object',
    make(spec) {
      const o = new BpfObject(obj('test_progs'));
      try {
        o.load();
        return { map: o.map(spec.name).raw, expectedName: spec.name, close: () => o.close() };
      } catch (e) {
        o.close();
        throw e;
      }
    },
  },
];

for (const spec of SPECS) {
  for (const variant of VARIANTS) {
    describe(`map ops: ${spec.type} (${variant.label})`, () => {
      let s: Subject;
      let map: BpfMap<Buffer, MapLookupResult>;
      const pins: string[] = [];

      beforeEach(() => {
        s = variant.make(spec);
        map = s.map;
      });
      afterEach(() => {
        s.close();
        for (const p of pins.splice(0)) rmSync(p, { force: true });
      });

      // Keys that exist in every map of this type (arrays: valid indexes).
      const K = spec.array ? [1, 2, 3] : [3, 1, 7];
      const key = (k: number): Buffer => le(k, spec.keySize);
      const val = (v: number | bigint): Buffer => le(v, spec.valueSize);
      /** Asserts every slot (every CPU's, for per-CPU maps) under `k` holds `v`. */
      const holds = (k: number | bigint | Buffer, v: number | bigint): void => {
        const got = slots(map.lookup(k));
        assert.equal(got.length, spec.perCpu ? CPUS : 1);
        for (const b of got) assert.deepEqual(b, val(v));
      };

      it('reports its metadata, as the kernel (bpftool) sees it', () => {
        assert.equal(map.name, s.expectedName);
        assert.equal(map.type, spec.type);
        assert.equal(map.keySize, spec.keySize);
        assert.equal(map.valueSize, spec.valueSize);
        assert.equal(map.maxEntries, spec.maxEntries);
        assert.equal(map.flags, 0);
        assert.ok(Number.isInteger(map.fd) && map.fd > 0, `fd ${map.fd}`);
        assert.ok(Number.isInteger(map.id) && map.id > 0, `id ${map.id}`);
        assert.equal(map.perCpu, spec.perCpu);
        assert.equal(map.closed, false);
        const k = bpftoolShow(['id', String(map.id)]);
        assert.equal(k.id, map.id);
        assert.equal(k.name, spec.name.slice(0, 15));
        assert.equal(k.type, spec.type);
        assert.equal(k.flags, map.flags);
        assert.equal(k.max_entries, spec.maxEntries);
        assert.equal(k.bytes_key, spec.keySize);
        assert.equal(k.bytes_value, spec.valueSize);
      });

      if (spec.array) {
        it('lookup of an untouched index gives zeros; an index past the end gives undefined', () => {
          for (let i = 0; i < spec.maxEntries; i++) holds(i, 0);
          assert.equal(map.lookup(spec.maxEntries), undefined);
          assert.equal(map.lookup(0xffff_ffff), undefined);
        });
      } else {
        it('lookup of a missing key gives undefined', () => {
          assert.equal(map.lookup(K[0]!), undefined);
          assert.equal(map.lookup(key(12345)), undefined);
          map.update(K[0]!, 1);
          assert.equal(map.lookup(K[1]!), undefined);
        });
      }

      it("update flags: 'any' creates and replaces, 'noexist' only creates, 'exist' only replaces", () => {
        const [a, b] = [K[0]!, K[1]!];
        map.update(a, 10);
        holds(a, 10);
        map.update(a, 11, { flags: 'any' });
        holds(a, 11);
        // An existing element, and arrays have every index: the kernel says EEXIST.
        const e = bpfError(() => map.update(a, 12, { flags: 'noexist' }), 'EEXIST', 'bpf_map_update_elem');
        assert.equal(e.errno, 17);
        holds(a, 11);
        map.update(a, 13, { flags: 'exist' });
        holds(a, 13);
        if (spec.array) {
          bpfError(() => map.update(b, 14, { flags: 'noexist' }), 'EEXIST', 'bpf_map_update_elem');
          map.update(b, 15, { flags: 'exist' });
          holds(b, 15);
          // Past the last index there is no element to create.
          bpfError(() => map.update(spec.maxEntries, 1), 'E2BIG', 'bpf_map_update_elem');
        } else {
          const miss = bpfError(() => map.update(b, 14, { flags: 'exist' }), 'ENOENT', 'bpf_map_update_elem');
          assert.equal(miss.errno, 2);
          assert.equal(map.lookup(b), undefined);
          map.update(b, 15, { flags: 'noexist' });
          holds(b, 15);
        }
        throwsWith(() => map.update(a, 1, { flags: 'bogus' as never }), { code: 'ERR_INVALID_ARG_VALUE' }, TypeError);
        holds(a, 13);
      });

      it('takes keys and values as Buffer, number and bigint, and reads them back as little-endian bytes', () => {
        const [a, b, c] = [K[0]!, K[1]!, K[2]!];
        const big = spec.valueSize === 8 ? 0xfedc_ba98_7654_3210n : 0xdead_beefn;
        const top = spec.valueSize === 8 ? 2 ** 53 - 1 : 0xffff_fffe;
        map.update(key(a), val(0x0102_0304)); // Buffer key, Buffer value
        map.update(b, big); // number key, bigint value
        map.update(BigInt(c), top); // bigint key, number value
        holds(key(a), 0x0102_0304);
        holds(BigInt(b), big);
        holds(c, top);
        // A negative number is its two's complement.
        map.update(a, -1);
        for (const buf of slots(map.lookup(a))) assert.deepEqual(buf, Buffer.alloc(spec.valueSize, 0xff));
        // The bytes in the kernel, as bpftool reads them.
        const raw = bpftoolLookup(map.id, key(b));
        assert.equal(raw.length, spec.perCpu ? CPUS : 1);
        for (const r of raw) assert.deepEqual(r, val(big));
        // A Uint8Array works like a Buffer.
        map.update(new Uint8Array(key(c)), new Uint8Array(val(77)));
        holds(c, 77);
        if (spec.keySize === 8) {
          // Beyond 2^32 and beyond 2^53 (bigint) in an 8-byte key.
          map.update(2 ** 40 + 5, 1);
          map.update(0x0102_0304_0506_0708n, 2);
          holds(key(2 ** 40 + 5), 1);
          holds(le(0x0102_0304_0506_0708n, 8), 2);
          assert.deepEqual(new Set([...map.keys()].map(num)), new Set([BigInt(a), BigInt(b), BigInt(c), 2n ** 40n + 5n, 0x0102_0304_0506_0708n]));
        }
      });

      if (spec.array) {
        it('delete is refused with EINVAL: array elements always exist', () => {
          map.update(K[0]!, 5);
          const e = bpfError(() => map.delete(K[0]!), 'EINVAL', 'bpf_map_delete_elem');
          assert.equal(e.errno, 22);
          holds(K[0]!, 5);
        });

        it("lookupAndDelete is refused with the kernel's ENOTSUPP (524), the element stays", () => {
          map.update(K[0]!, 6);
          const e = bpfError(() => map.lookupAndDelete(K[0]!), 'ENOTSUPP', 'bpf_map_lookup_and_delete_elem');
          assert.equal(e.errno, 524);
          assert.match(e.message, new RegExp(spec.name.slice(0, 15)));
          holds(K[0]!, 6);
        });
      } else {
        it('delete gives true, then false once the key is gone', () => {
          map.update(K[0]!, 5);
          map.update(K[1]!, 6);
          assert.equal(map.delete(K[0]!), true);
          assert.equal(map.lookup(K[0]!), undefined);
          assert.equal(map.delete(K[0]!), false);
          assert.equal(map.delete(key(999)), false);
          holds(K[1]!, 6);
        });

        // hash, percpu_hash and lru_hash alike: Linux 5.14
        itIf('lookupAndDeleteHash', features.lookupAndDeleteHash())('lookupAndDelete returns the value and removes the element', () => {
          map.update(K[0]!, 0x1234_5678);
          map.update(K[1]!, 9);
          const got = map.lookupAndDelete(K[0]!);
          assert.equal(slots(got).length, spec.perCpu ? CPUS : 1);
          for (const b of slots(got)) assert.deepEqual(b, val(0x1234_5678));
          assert.equal(map.lookup(K[0]!), undefined);
          assert.equal(map.lookupAndDelete(K[0]!), undefined);
          assert.equal(map.delete(K[0]!), false);
          holds(K[1]!, 9);
        });
      }

      it('keys(), values(), entries() and for..of list exactly what the kernel holds', () => {
        const written = new Map<number, number>([[K[0]!, 100], [K[1]!, 200], [K[2]!, 300]]);
        for (const [k, v] of written) map.update(k, v);
        const want = new Map<bigint, bigint>();
        if (spec.array) for (let i = 0; i < spec.maxEntries; i++) want.set(BigInt(i), 0n);
        for (const [k, v] of written) want.set(BigInt(k), BigInt(v));

        const keys = [...map.keys()];
        for (const k of keys) assert.equal(k.length, spec.keySize);
        assert.equal(keys.length, want.size);
        assert.deepEqual(new Set(keys.map(num)), new Set(want.keys()));
        if (spec.array) assert.deepEqual(keys.map(num), [...want.keys()]); // arrays: 0..maxEntries-1, in order

        const fromEntries = new Map<bigint, bigint>();
        for (const [k, v] of map.entries()) {
          const vs = slots(v);
          assert.equal(vs.length, spec.perCpu ? CPUS : 1);
          for (const b of vs) assert.deepEqual(b, vs[0]);
          fromEntries.set(num(k), num(vs[0]!));
        }
        assert.deepEqual(fromEntries, want);

        const fromIter = new Map<bigint, bigint>();
        for (const [k, v] of map) fromIter.set(num(k), num(slots(v)[0]!));
        assert.deepEqual(fromIter, want);

        const values = [...map.values()].map((v) => num(slots(v)[0]!));
        assert.deepEqual(values.sort(), [...want.values()].sort());

        if (!spec.array) {
          map.delete(K[1]!);
          assert.deepEqual(new Set([...map.keys()].map(num)), new Set([BigInt(K[0]!), BigInt(K[2]!)]));
          map.delete(K[0]!);
          map.delete(K[2]!);
          assert.deepEqual([...map.keys()], []);
          assert.deepEqual([...map], []);
        }
      });

      if (spec.perCpu) {
        it('lookup gives one Buffer per possible CPU, each valueSize bytes', () => {
          map.update(K[0]!, 3);
          const got = asPerCpu(map.lookup(K[0]!));
          assert.equal(got.length, CPUS);
          for (const b of got) {
            assert.ok(Buffer.isBuffer(b));
            assert.equal(b.length, spec.valueSize);
            assert.deepEqual(b, val(3));
          }
        });

        it('update with one value per CPU writes each CPU its own; one value goes to every CPU', () => {
          const perCpu = Array.from({ length: CPUS }, (_, cpu) => 1000 + cpu * 7);
          map.update(K[0]!, perCpu);
          const got = asPerCpu(map.lookup(K[0]!));
          assert.deepEqual(got.map(num), perCpu.map(BigInt));
          // Mixed kinds in one array.
          const mixed = Array.from({ length: CPUS }, (_, cpu) => (cpu % 2 ? BigInt(cpu + 1) : val(cpu + 1)));
          map.update(K[1]!, mixed);
          assert.deepEqual(asPerCpu(map.lookup(K[1]!)).map(num), Array.from({ length: CPUS }, (_, cpu) => BigInt(cpu + 1)));
          // bpftool sees each CPU's slot.
          assert.deepEqual(bpftoolLookup(map.id, key(K[0]!)).map(num), perCpu.map(BigInt));
          map.update(K[0]!, 42);
          assert.deepEqual(asPerCpu(map.lookup(K[0]!)).map(num), Array<bigint>(CPUS).fill(42n));
        });

        it('an array of the wrong length is a RangeError, and nothing is written', () => {
          map.update(K[0]!, 8);
          for (const n of [0, CPUS - 1, CPUS + 1]) {
            throwsWith(() => map.update(K[0]!, Array<number>(n).fill(1)), { code: 'ERR_INVALID_ARG_VALUE' }, RangeError);
          }
          holds(K[0]!, 8);
        });
      } else {
        it('lookup gives one Buffer; an array value is a TypeError', () => {
          map.update(K[0]!, 3);
          const got = asBuffer(map.lookup(K[0]!));
          assert.equal(got.length, spec.valueSize);
          throwsWith(() => map.update(K[0]!, [1, 2]), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
          holds(K[0]!, 3);
        });
      }

      it('freeze() makes the map read-only for user space (EPERM), still readable', () => {
        map.update(K[0]!, 21);
        map.freeze();
        const e = bpfError(() => map.update(K[0]!, 22), 'EPERM', 'bpf_map_update_elem');
        assert.equal(e.errno, 1);
        bpfError(() => map.update(K[1]!, 22), 'EPERM', 'bpf_map_update_elem');
        if (!spec.array) bpfError(() => map.delete(K[0]!), 'EPERM', 'bpf_map_delete_elem');
        holds(K[0]!, 21);
        assert.equal((bpftoolShow(['id', String(map.id)]) as BpftoolMap & { frozen: number }).frozen, 1);
      });

      if (spec.type === 'lru_hash') {
        it('evicts: never more than maxEntries elements, and the newest key is there', () => {
          const n = spec.maxEntries * 4;
          for (let i = 0; i < n; i++) {
            map.update(i, i * 3);
            const count = [...map.keys()].length;
            assert.ok(count <= spec.maxEntries, `${count} elements after ${i + 1} inserts`);
            holds(i, i * 3);
          }
          const keys = [...map.keys()].map(num);
          assert.ok(keys.length > 0 && keys.length <= spec.maxEntries);
          assert.ok(keys.includes(BigInt(n - 1)));
          // The oldest keys were evicted to make room. The kernel's LRU is
          // approximate (per-CPU free lists, a reference bit set by our
          // lookups), so old keys may survive: once, in a full suite run,
          // key 0 did; under Debian's 5.10 with two vCPUs, keys 0-15 (half
          // the map, as if one CPU's share never rotated) all did, once in
          // many runs. Still, at least half the first keys must go.
          const oldest = keys.filter((k) => k < BigInt(spec.maxEntries));
          assert.ok(oldest.length <= spec.maxEntries / 2, `${oldest.length} of the first ${spec.maxEntries} keys still there: ${oldest.join(' ')}`);
        });
      }

      it('pin(), BpfMap.fromPin() and unpin(): the same kernel map, seen by bpftool too', () => {
        const p = pinPath(`${spec.name}-${variant.label.startsWith('BpfMap') ? 'c' : 'o'}`);
        pins.push(p);
        map.update(K[0]!, 31);
        map.pin(p);
        assert.ok(existsSync(p));
        const pinned = BpfMap.fromPin(p);
        // A map of the object is decoded with the BTF the kernel keeps for it.
        assert.equal(pinned.decoded, !variant.label.startsWith('BpfMap'));
        const other = pinned.raw;
        try {
          assert.notEqual(other.fd, map.fd);
          assert.equal(other.id, map.id);
          assert.equal(other.name, spec.name.slice(0, 15));
          assert.equal(other.type, spec.type);
          assert.equal(other.keySize, spec.keySize);
          assert.equal(other.valueSize, spec.valueSize);
          assert.equal(other.maxEntries, spec.maxEntries);
          assert.equal(other.perCpu, spec.perCpu);
          // A write through one handle is read through the other, both ways.
          for (const b of slots(other.lookup(K[0]!))) assert.deepEqual(b, val(31));
          other.update(K[1]!, 32);
          holds(K[1]!, 32);
          const k = bpftoolShow(['pinned', p]);
          assert.equal(k.id, map.id);
          assert.equal(k.name, other.name);
          assert.equal(k.type, map.type);
          assert.equal(k.max_entries, map.maxEntries);
          assert.equal(k.bytes_key, map.keySize);
          assert.equal(k.bytes_value, map.valueSize);
        } finally {
          other.close();
        }
        map.unpin();
        assert.equal(existsSync(p), false);
        // The map itself lives on through this handle.
        holds(K[1]!, 32);
        bpfError(() => BpfMap.fromPin(p), 'ENOENT', 'bpf_obj_get');
      });
    });
  }
}

describe('map ops: sizes, pins and errors outside the table', () => {
  const pins: string[] = [];
  before(() => {
    ensureBpffs();
  });
  afterEach(() => {
    for (const p of pins.splice(0)) rmSync(p, { force: true });
  });

  it('many maps, some collected: every element op reaches its own map (read back through each map\'s own fd, not the shared ops)', async function () {
    // One set of native op functions serves every map, each map by its
    // slot; a collected map's slot is reused by the next map (not visible
    // from JavaScript: what is checked is that each write landed in its
    // own map, read back by lookupBatch(keys), which calls the map's own
    // wrapper with its own fd, not the shared ops).
    const gc = (globalThis as { gc?: () => void }).gc;
    assert.ok(gc, 'run mocha with --expose-gc (.mocharc.json)');
    const make = (tag: number) => {
      const m = BpfMap.create({ type: 'hash', keySize: 4, valueSize: 8, maxEntries: 8 });
      m.update(1, BigInt(tag));
      assert.equal(m.lookup(1)?.readBigUInt64LE(0), BigInt(tag));
      return m;
    };
    const dropped: WeakRef<ReturnType<typeof make>>[] = [];
    (() => {
      for (let i = 0; i < 40; i++) dropped.push(new WeakRef(make(1000 + i)));
    })();
    const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
    for (let i = 0; i < 20; i++) {
      // deref() keeps a live target until the job ends: collect in a new one
      await tick();
      gc();
      await tick(); // finalizers
      if (dropped.every((r) => r.deref() === undefined)) break;
    }
    assert.deepEqual(dropped.map((r, i) => (r.deref() === undefined ? -1 : i)).filter((i) => i >= 0), [], 'maps dropped without close() are collected');
    const kept = Array.from({ length: 60 }, (_, i) => make(i));
    try {
      // Interleaved ops over all of them, then each map read back by keys.
      for (let round = 0; round < 3; round++) {
        kept.forEach((m, i) => {
          m.update(2 + round, BigInt(i * 100 + round));
          assert.equal(m.delete(1), true);
          m.update(1, BigInt(i));
        });
      }
      kept.forEach((m, i) => {
        const got = m.raw.lookupBatch([1, 2, 3, 4, 5]).map(([k, v]) => [k.readUInt32LE(0), v.readBigUInt64LE(0)]);
        assert.deepEqual(got, [[1, BigInt(i)], [2, BigInt(i * 100)], [3, BigInt(i * 100 + 1)], [4, BigInt(i * 100 + 2)]]);
      });
    } finally {
      for (const m of kept) m.close();
    }
    // a closed map's ops throw; the others go on
    throwsWith(() => kept[0]!.lookup(1), { code: 'ERR_INVALID_STATE' }, TypeError);
    const last = make(7);
    assert.equal(last.lookup(1)?.readBigUInt64LE(0), 7n);
    last.close();
  });

  it('maxEntries set before load() reaches the kernel; after load() it is a TypeError', () => {
    const o = new BpfObject(obj('test_progs'));
    try {
      const m = o.map('hash_map');
      assert.equal(m.maxEntries, 64);
      m.maxEntries = 128;
      assert.equal(m.maxEntries, 128);
      o.load();
      assert.equal(m.maxEntries, 128);
      assert.equal(bpftoolShow(['id', String(m.id)]).max_entries, 128);
      // The kernel really holds 128 elements, and not one more.
      for (let i = 0; i < 128; i++) m.update(i, i);
      bpfError(() => m.update(128, 1), 'E2BIG', 'bpf_map_update_elem');
      throwsWith(() => { m.maxEntries = 256; }, { code: 'ERR_INVALID_STATE' }, TypeError);
      assert.equal(m.maxEntries, 128);
      assert.equal(o.map('array_map').maxEntries, 8);
    } finally {
      o.close();
    }
    const c = BpfMap.create({ type: 'hash', keySize: 4, valueSize: 4, maxEntries: 4 });
    try {
      throwsWith(() => { c.maxEntries = 8; }, { code: 'ERR_INVALID_STATE' }, TypeError);
      assert.equal(c.maxEntries, 4);
    } finally {
      c.close();
    }
  });

  it('BpfMap.fromPin() of a path that is not a pin is a BpfError ENOENT naming the path', () => {
    const p = pinPath('never-pinned');
    const e = bpfError(() => BpfMap.fromPin(p), 'ENOENT', 'bpf_obj_get');
    assert.equal(e.errno, 2);
    assert.ok(e.message.includes(p), e.message);
  });

  it('BpfMap.fromPin() of a pinned program is a BpfError EINVAL', () => {
    const o = new BpfObject(obj('test_progs')).load();
    const p = pinPath('a-program');
    pins.push(p);
    try {
      execFileSync('bpftool', ['prog', 'pin', 'id', String(o.program('sock_len').id), p]);
      const e = bpfError(() => BpfMap.fromPin(p), 'EINVAL', 'bpf_obj_get');
      assert.ok(e.message.includes(p), e.message);
    } finally {
      o.close();
    }
  });

  it('opens and reads a map that bpftool created and pinned', () => {
    const p = pinPath('bt_map');
    pins.push(p);
    execFileSync('bpftool', ['map', 'create', p, 'type', 'hash', 'key', '4', 'value', '8', 'entries', '16', 'name', 'bt_map']);
    execFileSync('bpftool', ['map', 'update', 'pinned', p, 'key', '1', '0', '0', '0', 'value', '2', '0', '0', '0', '0', '0', '0', '0']);
    const m = BpfMap.fromPin(p);
    try {
      assert.equal(m.name, 'bt_map');
      assert.equal(m.type, 'hash');
      assert.equal(m.keySize, 4);
      assert.equal(m.valueSize, 8);
      assert.equal(m.maxEntries, 16);
      assert.equal(m.id, bpftoolShow(['pinned', p]).id);
      assert.deepEqual(m.lookup(1), le(2, 8));
      assert.deepEqual([...m.keys()], [le(1, 4)]);
      // And bpftool reads what the library writes.
      m.update(3, 0x0a0b_0c0dn);
      assert.deepEqual(bpftoolLookup(m.id, le(3, 4)), [le(0x0a0b_0c0dn, 8)]);
    } finally {
      m.close();
    }
  });

  it('a number key for a 6-byte key is a TypeError; a 6-byte Buffer works', () => {
    const m = BpfMap.create({ type: 'hash', keySize: 6, valueSize: 8, maxEntries: 4 });
    try {
      throwsWith(() => m.update(1, 1), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
      throwsWith(() => m.lookup(1n), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
      assert.deepEqual([...m.keys()], []);
      const k = Buffer.from([1, 2, 3, 4, 5, 6]);
      m.update(k, 9);
      assert.deepEqual(m.lookup(k), le(9, 8));
      assert.deepEqual([...m.keys()], [k]);
    } finally {
      m.close();
    }
  });

  it('a number that does not fit the key is a RangeError, and nothing is written', () => {
    const m = BpfMap.create({ type: 'hash', keySize: 4, valueSize: 8, maxEntries: 4 });
    try {
      for (const k of [2 ** 32, 2n ** 32n, -(2 ** 31) - 1, 2 ** 53, 1.5, Number.NaN]) {
        throwsWith(() => m.update(k, 1), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
      }
      throwsWith(() => m.update(1, 2n ** 64n), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
      assert.deepEqual([...m.keys()], []);
      m.update(2 ** 32 - 1, 1);
      assert.deepEqual([...m.keys()], [Buffer.alloc(4, 0xff)]);
    } finally {
      m.close();
    }
  });
});
