// The batch API: lookupBatch, updateBatch, deleteBatch, lookupAndDeleteBatch,
// typed and raw, against the kernel. Values are written by a BPF program
// (mapfast_test's `fill`) or by the batch calls and read back through
// per-key lookups; the per-key fallback runs where the kernel has no batch
// operations for the map type (an LPM trie) and where { batch: false }
// asks for it, and must give the same answers.
import { strict as assert } from 'node:assert';
import { BpfError, BpfMap, BpfObject, MapBatchCursor, features } from '../ts/index.js';
import { itIf, obj, throwsWith } from './helpers.js';

// The programs are socket filters: test runs take a frame (its bytes do not matter).
const FRAME = Buffer.alloc(64);

interface Hit { count: bigint; pid: number; flags: number }
const FILL_N = 64;
const hitOf = (i: number): Hit => ({ count: BigInt(i * 10 + 1), pid: 1000 + i, flags: i & 3 });
const byKey = <K, V>(e: [K, V][]): [K, V][] => [...e].sort((a, b) => Number(a[0]) - Number(b[0]));

describe('map: batch operations', function () {
  let o: BpfObject;
  let counts: BpfMap<number, Hit>;
  let slots: BpfMap<number, bigint>;
  beforeEach(() => {
    o = new BpfObject(obj('mapfast_test'));
    o.load();
    counts = o.map('counts') as BpfMap<number, Hit>;
    slots = o.map('slots') as BpfMap<number, bigint>;
  });
  afterEach(() => o.close());
  const fill = (): void => assert.equal(o.program('fill').testRun({ data: FRAME }).retval, 0);

  for (const batch of [true, false]) {
    const it2 = batch ? itIf('batchOps', features.batchOps()) : it;
    const how = batch ? 'kernel batches' : '{ batch: false }: key by key';

    it2(`lookupBatch() reads what the program wrote, typed and raw (${how})`, function () {
      fill();
      const hits = byKey(counts.lookupBatch(undefined, { batch }));
      assert.equal(hits.length, FILL_N);
      hits.forEach(([k, v], i) => {
        assert.equal(k, i);
        assert.deepEqual(v, hitOf(i));
      });
      const raw = byKey(counts.raw.lookupBatch(undefined, { batch }).map(([k, v]) => [k.readUInt32LE(0), v] as [number, Buffer]));
      assert.equal(raw.length, FILL_N);
      assert.equal(raw[5]![1].readBigUInt64LE(0), 51n);
      assert.equal(raw[5]![1].readUInt32LE(8), 1005);
      // arrays: every slot, in key order
      const arr = slots.lookupBatch(undefined, { batch });
      assert.deepEqual(arr, Array.from({ length: FILL_N }, (_, i) => [i, BigInt(i * i + 7)]));
    });

    it2(`lookupBatchRaw(): the whole map as key and value columns, the same entries as lookupBatch() (${how})`, function () {
      fill();
      const cols = counts.lookupBatchRaw({ batch, batchSize: 5 });
      assert.equal(cols.count, FILL_N);
      assert.equal(cols.keySize, 4);
      assert.equal(cols.valueBytes, 16);
      assert.equal(cols.keys.length, FILL_N * 4);
      assert.equal(cols.values.length, FILL_N * 16);
      const seen = new Map<number, Hit>();
      for (let i = 0; i < cols.count; i++) {
        const v = cols.values.subarray(i * 16);
        seen.set(cols.keys.readUInt32LE(i * 4), { count: v.readBigUInt64LE(0), pid: v.readUInt32LE(8), flags: v.readUInt32LE(12) });
      }
      assert.deepEqual([...seen.keys()].sort((a, b) => a - b), Array.from({ length: FILL_N }, (_, i) => i));
      for (const [k, v] of seen) assert.deepEqual(v, hitOf(k));
      const arr = slots.lookupBatchRaw({ batch });
      assert.equal(arr.count, FILL_N);
      for (let i = 0; i < FILL_N; i++) {
        assert.equal(arr.keys.readUInt32LE(i * 4), i);
        assert.equal(arr.values.readBigUInt64LE(i * 8), BigInt(i * i + 7));
      }
      // the columns are copies: the map changing later does not touch them
      slots.update(0, 99n);
      assert.equal(arr.values.readBigUInt64LE(0), 7n);
    });

    it2(`lookupBatchInto(): a pass in the caller's buffers, 5 entries at a time, gives every entry once (${how})`, function () {
      fill();
      const cursor = new MapBatchCursor();
      // a plain Uint8Array (at an offset in its ArrayBuffer) for keys, a
      // Buffer for values; room for 5 entries
      const keys = new Uint8Array(64).subarray(8, 8 + 5 * 4 + 3);
      const values = Buffer.alloc(5 * 16);
      const seen = new Map<number, Hit>();
      let calls = 0;
      // every other call through the raw view of the same map: one pass
      for (let n; (n = (calls % 2 === 0 ? counts : counts.raw).lookupBatchInto(cursor, keys, values, { batch })) > 0;) {
        calls++;
        assert.ok(n <= 5, `a call wrote ${n} entries into room for 5`);
        const kv = new DataView(keys.buffer, keys.byteOffset);
        for (let i = 0; i < n; i++) {
          const k = kv.getUint32(i * 4, true);
          assert.ok(!seen.has(k), `key ${k} came twice`);
          seen.set(k, { count: values.readBigUInt64LE(i * 16), pid: values.readUInt32LE(i * 16 + 8), flags: values.readUInt32LE(i * 16 + 12) });
        }
      }
      assert.ok(calls >= FILL_N / 5, `${calls} calls for ${FILL_N} entries`);
      assert.equal(cursor.done, true);
      assert.equal(counts.lookupBatchInto(cursor, keys, values, { batch }), 0); // done stays done
      assert.deepEqual([...seen.keys()].sort((a, b) => a - b), Array.from({ length: FILL_N }, (_, i) => i));
      for (const [k, v] of seen) assert.deepEqual(v, hitOf(k));
      // arrays: in key order; reset() starts a new pass, here over another map
      cursor.reset();
      assert.equal(cursor.done, false);
      const sk = Buffer.alloc(7 * 4);
      const sv = Buffer.alloc(7 * 8);
      const got: bigint[] = [];
      for (let n; (n = slots.lookupBatchInto(cursor, sk, sv, { batch })) > 0;) {
        for (let i = 0; i < n; i++) {
          assert.equal(sk.readUInt32LE(i * 4), got.length);
          got.push(sv.readBigUInt64LE(i * 8));
        }
      }
      assert.deepEqual(got, Array.from({ length: FILL_N }, (_, i) => BigInt(i * i + 7)));
    });

    it2(`updateBatch() writes what per-key lookups and a program see (${how})`, function () {
      const entries = Array.from({ length: 100 }, (_, i) => [i * 3, { count: BigInt(i) << 40n, pid: i, flags: 7 }] as [number, Hit]);
      assert.equal(counts.updateBatch(entries, { batch }), 100);
      for (const [k, v] of entries) assert.deepEqual(counts.lookup(k), v);
      assert.equal(counts.lookup(1), undefined);
      // a Map, and raw Buffers
      assert.equal(slots.updateBatch(new Map([[1, 11n], [2, 22n]]), { batch }), 2);
      assert.equal(slots.raw.updateBatch([[Buffer.from([3, 0, 0, 0]), Buffer.from([33, 0, 0, 0, 0, 0, 0, 0])]], { batch }), 1);
      assert.deepEqual([slots.lookup(1), slots.lookup(2), slots.lookup(3)], [11n, 22n, 33n]);
      // the program overwrites them: the kernel holds what we wrote, not a copy of ours
      fill();
      assert.equal(slots.lookup(2), 11n);
    });

    it2(`deleteBatch() skips missing keys and counts what it deleted (${how})`, function () {
      fill();
      // 70 and 71 are not there: the kernel's batch stops at them, we go on
      assert.equal(counts.deleteBatch([0, 1, 70, 2, 71, 63], { batch }), 4);
      assert.equal(counts.lookupBatch(undefined, { batch }).length, FILL_N - 4);
      for (const k of [0, 1, 2, 63]) assert.equal(counts.lookup(k), undefined);
      assert.deepEqual(counts.lookup(3), hitOf(3));
      assert.equal(counts.deleteBatch([], { batch }), 0);
    });

    it2(`lookupAndDeleteBatch() empties a hash map and returns what it held (${how})`, function () {
      fill();
      const taken = byKey(counts.lookupAndDeleteBatch({ batch }));
      assert.deepEqual(taken, Array.from({ length: FILL_N }, (_, i) => [i, hitOf(i)]));
      assert.deepEqual(counts.lookupBatch(undefined, { batch }), []);
      assert.deepEqual([...counts.keys()], []);
    });
  }

  it('single-key results are the caller\'s own: later operations (through the shared scratch) do not change them', function () {
    fill();
    const raw = counts.raw.lookup(1)!;
    const typed = counts.lookup(2)!;
    const slot = slots.raw.lookup(3)!;
    counts.update(1, { count: 999n, pid: 9, flags: 9 });
    counts.lookup(5);
    slots.update(3, 12345n);
    slots.raw.lookup(4);
    assert.equal(raw.readBigUInt64LE(0), 11n);
    assert.deepEqual(typed, hitOf(2));
    assert.equal(slot.readBigUInt64LE(0), 16n);
    // writing into a result changes nothing in the map
    slot.fill(0xff);
    assert.equal(slots.lookup(3), 12345n);
    // lookupAndDelete on a hash map needs 5.14 (features.lookupAndDeleteHash)
    if (features.lookupAndDeleteHash() !== true) return;
    const taken = counts.lookupAndDelete(1)!;
    counts.update(1, hitOf(1));
    assert.deepEqual(taken, { count: 999n, pid: 9, flags: 9 });
  });

  it('lookupBatch(keys): the entries of those keys that are there, in their order', function () {
    fill();
    assert.deepEqual(counts.lookupBatch([9, 500, 2]), [[9, hitOf(9)], [2, hitOf(2)]]);
    assert.deepEqual(slots.lookupBatch([3, 0]), [[3, 16n], [0, 7n]]);
    assert.deepEqual(counts.lookupBatch([]), []);
  });

  itIf('batchOps', features.batchOps())('many small kernel batches (batchSize 1) read every element once', function () {
    fill();
    const hits = counts.lookupBatch(undefined, { batchSize: 1 });
    assert.deepEqual(byKey(hits).map(([k]) => k), Array.from({ length: FILL_N }, (_, i) => i));
    assert.equal(slots.lookupBatch(undefined, { batchSize: 7 }).length, FILL_N);
  });

  it('updateBatch flags: noexist refuses an existing key (EEXIST), exist a missing one (ENOENT)', function () {
    fill();
    const e1 = throwsWith(() => counts.updateBatch([[100, hitOf(1)], [5, hitOf(1)]], { flags: 'noexist' }),
      { code: 'EEXIST', op: 'bpf_map_update_elem' }, BpfError);
    assert.ok(e1);
    assert.deepEqual(counts.lookup(100), hitOf(1), 'the elements before the refused one are written');
    assert.deepEqual(counts.lookup(5), hitOf(5));
    throwsWith(() => counts.updateBatch([[7, hitOf(0)], [900, hitOf(0)]], { flags: 'exist' }), { code: 'ENOENT' }, BpfError);
    assert.deepEqual(counts.lookup(7), hitOf(0));
    assert.equal(counts.lookup(900), undefined);
  });

  it('arrays: no deletes, so deleteBatch and lookupAndDeleteBatch are refused before any syscall', function () {
    fill();
    throwsWith(() => slots.deleteBatch([1]), { code: 'ERR_INVALID_STATE', message: /cannot be deleted/ }, TypeError);
    throwsWith(() => slots.lookupAndDeleteBatch(), { code: 'ERR_INVALID_STATE', message: /lookupBatch/ }, TypeError);
    assert.equal(slots.lookup(1), 8n);
  });

  it('bad input is refused before anything is written', function () {
    throwsWith(() => counts.lookupBatch(5 as never), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    throwsWith(() => counts.updateBatch([[1, hitOf(1)], [2] as never]), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    throwsWith(() => counts.updateBatch([[1, hitOf(1)], [2, { pid: -1 }]]), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
    throwsWith(() => counts.raw.updateBatch([[Buffer.alloc(4), Buffer.alloc(16)], [Buffer.alloc(3), Buffer.alloc(16)]]),
      { code: 'ERR_INVALID_BUFFER_SIZE' }, RangeError);
    throwsWith(() => counts.updateBatch([[1, hitOf(1)]], { flags: 'sometimes' as never }), { code: 'ERR_INVALID_ARG_VALUE' }, TypeError);
    throwsWith(() => counts.deleteBatch(null as never), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    throwsWith(() => counts.lookupBatch(undefined, { batch: 'no' as never }), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    throwsWith(() => counts.lookupBatch(undefined, { batchSize: 0 }), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
    assert.deepEqual([...counts.keys()], [], 'nothing was written');
    o.close();
    throwsWith(() => counts.lookupBatch(), { code: 'ERR_INVALID_STATE' }, TypeError);
    throwsWith(() => counts.updateBatch([[1, hitOf(1)]]), { code: 'ERR_INVALID_STATE' }, TypeError);
  });

  itIf('batchOps', features.batchOps())('lookupBatchInto(): a hash bucket larger than the buffers is ENOSPC, the cursor stays, larger buffers go on', function () {
    // 64 keys in 64 buckets (the kernel rounds max_entries up to a power of
    // two): with a random hash seed, some bucket holds two or more (all 64
    // apart has odds of 64!/64^64, about 1e-27).
    using m = BpfMap.create({ type: 'hash', keySize: 4, valueSize: 8, maxEntries: 64 });
    assert.equal(m.updateBatch(Array.from({ length: 64 }, (_, k) => [k, BigInt(k) * 3n] as [number, bigint])), 64);
    const cursor = new MapBatchCursor();
    const seen = new Map<number, bigint>();
    let enospc = 0;
    let keys = Buffer.alloc(4);
    let values = Buffer.alloc(8);
    for (;;) {
      let n: number;
      try {
        n = m.lookupBatchInto(cursor, keys, values);
      } catch (e) {
        assert.ok(e instanceof BpfError, String(e));
        assert.equal(e.code, 'ENOSPC');
        assert.equal(e.op, 'bpf_map_lookup_batch');
        assert.match(e.message, /bucket holds more elements than the buffers' 1 entry; the cursor has not moved/);
        enospc++;
        keys = Buffer.alloc(64 * 4);
        values = Buffer.alloc(64 * 8);
        continue;
      }
      if (n === 0) break;
      for (let i = 0; i < n; i++) {
        const k = keys.readUInt32LE(i * 4);
        assert.ok(!seen.has(k), `key ${k} came twice`);
        seen.set(k, values.readBigUInt64LE(i * 8));
      }
    }
    assert.equal(enospc, 1);
    assert.equal(seen.size, 64);
    for (const [k, v] of seen) assert.equal(v, BigInt(k) * 3n);
  });

  it('lookupBatchInto(): misuse is a TypeError or RangeError, never a partial pass', function () {
    using a = BpfMap.create({ type: 'hash', keySize: 4, valueSize: 8, maxEntries: 8 });
    using b = BpfMap.create({ type: 'hash', keySize: 4, valueSize: 8, maxEntries: 8 });
    a.update(1, 1n);
    const cursor = new MapBatchCursor();
    throwsWith(() => a.lookupBatchInto({} as MapBatchCursor, Buffer.alloc(4), Buffer.alloc(8)), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    throwsWith(() => a.lookupBatchInto(cursor, 'keys' as unknown as Buffer, Buffer.alloc(8)), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    // room for no entry: values hold 7 bytes
    throwsWith(() => a.lookupBatchInto(cursor, Buffer.alloc(4), Buffer.alloc(7)), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
    const keys = Buffer.alloc(16);
    const values = Buffer.alloc(32);
    assert.equal(a.lookupBatchInto(cursor, keys, values), 1);
    assert.equal(keys.readUInt32LE(0), 1);
    assert.equal(values.readBigUInt64LE(0), 1n);
    // the cursor is in a pass over `a`
    throwsWith(() => b.lookupBatchInto(cursor, keys, values), { code: 'ERR_INVALID_STATE' }, TypeError);
    if (features.batchOps()) throwsWith(() => a.lookupBatchInto(cursor, keys, values, { batch: false }), { code: 'ERR_INVALID_STATE' }, TypeError);
    using q = BpfMap.create({ type: 'queue', keySize: 0, valueSize: 4, maxEntries: 4 });
    throwsWith(() => q.lookupBatchInto(new MapBatchCursor(), keys, values), { code: 'ERR_INVALID_STATE' }, TypeError);
    a.close();
    cursor.reset();
    throwsWith(() => a.lookupBatchInto(cursor, keys, values), { code: 'ERR_INVALID_STATE' }, TypeError);
  });

  it('per-CPU maps: one value per possible CPU in and out of a batch', function () {
    using m = BpfMap.create({ type: 'percpu_hash', keySize: 4, valueSize: 8, maxEntries: 16 });
    assert.equal(m.lookup(0), undefined);
    m.update(0, 5n); // one value for every CPU
    const n = (m.lookup(0) as Buffer[]).length;
    const perCpu = Array.from({ length: n }, (_, c) => BigInt(c + 1));
    assert.equal(m.updateBatch([[1, perCpu], [2, 9n]]), 2);
    const all = byKey(m.lookupBatch().map(([k, v]) => [k.readUInt32LE(0), (v as Buffer[]).map((b) => b.readBigUInt64LE(0))] as [number, bigint[]]));
    assert.deepEqual(all, [[0, Array(n).fill(5n)], [1, perCpu], [2, Array(n).fill(9n)]]);
    const cols = m.lookupBatchRaw();
    assert.equal(cols.count, 3);
    assert.equal(cols.valueBytes, 8 * n);
    const i1 = [0, 1, 2].find((i) => cols.keys.readUInt32LE(i * 4) === 1)!;
    assert.deepEqual(Array.from({ length: n }, (_, c) => cols.values.readBigUInt64LE(i1 * 8 * n + c * 8)), perCpu);
    // lookupBatchInto(): a value slot per possible CPU too
    const cursor = new MapBatchCursor();
    const kb = Buffer.alloc(2 * 4);
    const vb = Buffer.alloc(2 * 8 * n);
    const into = new Map<number, bigint[]>();
    for (let got; (got = m.lookupBatchInto(cursor, kb, vb)) > 0;) {
      for (let i = 0; i < got; i++) into.set(kb.readUInt32LE(i * 4), Array.from({ length: n }, (_, c) => vb.readBigUInt64LE(i * 8 * n + c * 8)));
    }
    assert.deepEqual([...into.entries()].sort((a, b) => a[0] - b[0]), [[0, Array(n).fill(5n)], [1, perCpu], [2, Array(n).fill(9n)]]);
    const taken = m.lookupAndDeleteBatch();
    assert.equal(taken.length, 3);
    assert.equal(m.lookup(1), undefined);
  });

  it('fallback where the kernel has no batch operations for the map type (LPM trie): same answers, key by key', function () {
    // BPF_F_NO_PREALLOC: LPM tries require it. Key: 4-byte prefix length + 4 bytes.
    using trie = BpfMap.create({ type: 'lpm_trie', keySize: 8, valueSize: 8, maxEntries: 16, flags: 1 });
    const key = (len: number, a: number): Buffer => {
      const b = Buffer.alloc(8);
      b.writeUInt32LE(len, 0);
      b.writeUInt32BE(a, 4);
      return b;
    };
    assert.equal(trie.updateBatch([[key(8, 0x0a000000), 1n], [key(16, 0x0a010000), 2n], [key(24, 0x0a010200), 3n]]), 3);
    const cols = trie.lookupBatchRaw();
    assert.equal(cols.count, 3);
    assert.deepEqual([0, 1, 2].map((i) => cols.values.readBigUInt64LE(i * 8)).sort(), [1n, 2n, 3n]);
    using queue = BpfMap.create({ type: 'queue', keySize: 0, valueSize: 4, maxEntries: 4 });
    assert.throws(() => queue.lookupBatchRaw(), { name: 'TypeError', code: 'ERR_INVALID_STATE' });
    const dump = trie.lookupBatch().map(([k, v]) => [k.toString('hex'), (v as Buffer).readBigUInt64LE(0)]);
    assert.equal(dump.length, 3);
    assert.deepEqual(new Map(dump as [string, bigint][]).get(key(16, 0x0a010000).toString('hex')), 2n);
    assert.deepEqual(trie.lookupBatch([key(24, 0x0a010200)]).map(([, v]) => (v as Buffer).readBigUInt64LE(0)), [3n]);
    assert.equal(trie.deleteBatch([key(8, 0x0a000000), key(8, 0x0b000000)]), 1);
    const rest = trie.lookupAndDeleteBatch();
    assert.deepEqual(rest.map(([, v]) => (v as Buffer).readBigUInt64LE(0)).sort(), [2n, 3n]);
    assert.deepEqual(trie.lookupBatch(), []);
  });
});
