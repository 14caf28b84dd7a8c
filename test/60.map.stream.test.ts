// Async map iteration against the real kernel: `for await` over
// map.entries() reads with bpf_map_lookup_batch (falling back to key by key
// where the kernel has no batch lookup for the map type) and must yield
// exactly what the key-by-key walk yields; map.watch() turns a map into a
// stream of snapshots or of changes. Expected contents are computed by the
// test from what it wrote, never taken from the library.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { BpfMap, BpfObject, type MapEntriesOptions, type MapLookupResult, type MapWatchOptions, type PerCpu } from '../ts/index.js';
import { obj, openFds } from './helpers.js';

/** The number of possible CPUs, from sysfs ("0-3,5"), independent of the library. */
function possibleCpus(): number {
  let n = 0;
  for (const part of readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim().split(',')) {
    const [lo, hi] = part.split('-').map(Number);
    n += hi === undefined ? 1 : hi - lo! + 1;
  }
  return n;
}
const CPUS = possibleCpus();

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

function u64(n: bigint | number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

/** A value as hex: one Buffer, or each CPU's joined by '/'. */
function hexValue(v: MapLookupResult): string {
  return Array.isArray(v) ? v.map((b) => b.toString('hex')).join('/') : v.toString('hex');
}

/** Entries as sorted "key=value" hex strings. Read only once iteration is over: yielded Buffers must stay intact. */
function pairs(entries: Iterable<readonly [Buffer, MapLookupResult]>): string[] {
  return [...entries].map(([k, v]) => `${k.toString('hex')}=${hexValue(v)}`).sort();
}

async function collect<K, V>(it: AsyncIterable<[K, V]>): Promise<[K, V][]> {
  const out: [K, V][] = [];
  for await (const e of it) out.push(e);
  return out;
}

/** The error `fn` throws or its promise rejects with. */
async function failure(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  return assert.fail('expected an error, nothing was thrown');
}

function isError(e: unknown, Ctor: ErrorConstructor | TypeErrorConstructor | RangeErrorConstructor, code: string, message?: RegExp): void {
  assert.ok(e instanceof Ctor, `expected a ${Ctor.name} ${code}, got ${String(e)}`);
  assert.equal((e as { code?: unknown }).code, code, String(e));
  if (message) assert.match(e.message, message);
}

/** Ends an iteration the way `break` does (its return()). */
async function stop<T>(it: AsyncIterator<T>): Promise<IteratorResult<T>> {
  assert.ok(it.return, 'the iterator has return()');
  return it.return(undefined);
}

/** Runs `fn` (async) and checks that it left no fd open. */
async function noFdLeak(fn: () => Promise<void>): Promise<void> {
  const before = openFds();
  await fn();
  assert.equal(openFds(), before, 'fd leak');
}

// The value the tests store under a key: distinct per key (and per CPU).
const valueOf = (key: number, cpu = 0): bigint => BigInt(key) * 1_000_003n + BigInt(cpu) * 7n + 1n;

describe('BpfMap: async entries() (bpf_map_lookup_batch)', function () {
  this.timeout(20_000);
  const MAX = 5_000;

  const TYPES = ['hash', 'array', 'percpu_hash', 'percpu_array', 'lru_hash'] as const;
  for (const type of TYPES) {
    const isArray = type === 'array' || type === 'percpu_array';
    const perCpu = type.startsWith('percpu');

    it(`${type}: for await yields exactly what for...of and entries({batch: false}) yield`, async function () {
      const m = BpfMap.create({ type, keySize: 4, valueSize: 8, maxEntries: MAX });
      try {
        // Arrays: every index; hashes: spread-out keys, filling the map.
        const keys = Array.from({ length: MAX }, (_, i) => (isArray ? i : (i * 2_654_435_761) >>> 0));
        const expected: string[] = [];
        for (const k of keys) {
          if (perCpu) {
            const vals = Array.from({ length: CPUS }, (_, c) => valueOf(k, c));
            m.update(k, vals);
            expected.push(`${u32(k).toString('hex')}=${vals.map((v) => u64(v).toString('hex')).join('/')}`);
          } else {
            m.update(k, valueOf(k));
            expected.push(`${u32(k).toString('hex')}=${u64(valueOf(k)).toString('hex')}`);
          }
        }
        expected.sort();

        const batched = await collect(m.entries({ batchSize: 256 }));
        const sync: [Buffer, MapLookupResult][] = [];
        for (const [k, v] of m) sync.push([k, v]);
        const keyByKey = await collect(m.entries({ batch: false }));

        for (const [k, v] of batched) {
          assert.equal(k.length, 4);
          if (perCpu) {
            assert.ok(Array.isArray(v), 'per-CPU values are arrays');
            assert.equal(v.length, CPUS);
            for (const b of v) assert.ok(Buffer.isBuffer(b) && b.length === 8);
          } else {
            assert.ok(Buffer.isBuffer(v) && v.length === 8, 'a value is one 8-byte Buffer');
          }
        }
        const got = pairs(batched);
        assert.deepEqual(got, pairs(sync), 'for await and for...of');
        assert.deepEqual(pairs(keyByKey), got, 'batch: false and batches');
        assert.equal(new Set(got).size, got.length, 'no element twice');
        if (type === 'lru_hash') {
          // LRU maps evict on their own when full: every element there is one
          // the test wrote, with its value.
          assert.ok(got.length > MAX / 2 && got.length <= MAX, `${got.length} elements`);
          const written = new Set(expected);
          for (const p of got) assert.ok(written.has(p), `${p} was never written`);
        } else {
          assert.equal(got.length, MAX);
          assert.deepEqual(got, expected);
        }
        if (isArray) {
          assert.deepEqual(batched.map(([k]) => k.readUInt32LE()).sort((a, b) => a - b), keys, 'the keys are 0..maxEntries-1');
        }
      } finally {
        m.close();
      }
    });
  }

  it('yields to the event loop between batches (batchSize 100 over 5000 elements)', async function () {
    const m = BpfMap.create({ type: 'hash', keySize: 4, valueSize: 8, maxEntries: 5_000 });
    try {
      for (let k = 0; k < 5_000; k++) m.update(k, valueOf(k));
      let n = 0;
      let firstTickAt = -1;
      let ticks = 0;
      let done = false;
      const tick = (): void => {
        if (done) return;
        if (firstTickAt < 0) firstTickAt = n;
        ticks++;
        setImmediate(tick);
      };
      setImmediate(tick);
      for await (const [k, v] of m.entries({ batchSize: 100 })) {
        assert.ok(Buffer.isBuffer(v) && v.readBigUInt64LE() === valueOf(k.readUInt32LE()));
        n++;
      }
      done = true;
      assert.equal(n, 5_000);
      assert.ok(firstTickAt >= 0 && firstTickAt < 5_000, `a setImmediate callback ran only after the iteration (at ${firstTickAt})`);
      // at least 50 batches of at most 100: the loop turned between most of them
      assert.ok(ticks >= 25, `the event loop turned ${ticks} times during 50+ batches`);
    } finally {
      m.close();
    }
  });

  it('an lpm_trie (no batch lookup) still yields every element, by the key-by-key fallback', async function () {
    const m = BpfMap.create({ type: 'lpm_trie', keySize: 8, valueSize: 8, maxEntries: 16, flags: 1 /* BPF_F_NO_PREALLOC */ });
    try {
      const prefix = (len: number, a: number, b: number, c: number, d: number): Buffer => {
        const k = Buffer.alloc(8);
        k.writeUInt32LE(len, 0); // prefixlen, host order
        k.set([a, b, c, d], 4); // the address, network order
        return k;
      };
      const keys = [prefix(0, 0, 0, 0, 0), prefix(8, 10, 0, 0, 0), prefix(16, 192, 168, 0, 0), prefix(32, 127, 0, 0, 1)];
      for (let i = 0; i < 10; i++) keys.push(prefix(24, 10, 1, i, 0));
      keys.forEach((k, i) => m.update(k, valueOf(i)));
      const expected = pairs(keys.map((k, i) => [k, u64(valueOf(i))] as const));
      const batched = await collect(m.entries({ batchSize: 4 }));
      assert.deepEqual(pairs(batched), expected);
      assert.deepEqual(pairs(await collect(m.entries({ batch: false }))), expected);
      assert.deepEqual(pairs(m.entries()), expected, 'for...of too');
    } finally {
      m.close();
    }
  });

  it('batchSize 1 on a 1000-element hash map: buckets larger than a batch still come whole', async function () {
    const m = BpfMap.create({ type: 'hash', keySize: 4, valueSize: 8, maxEntries: 1_000 });
    try {
      const expected: string[] = [];
      for (let k = 0; k < 1_000; k++) {
        m.update(k, valueOf(k));
        expected.push(`${u32(k).toString('hex')}=${u64(valueOf(k)).toString('hex')}`);
      }
      const got = await collect(m.entries({ batchSize: 1 }));
      assert.equal(got.length, 1_000);
      assert.deepEqual(pairs(got), expected.sort());
    } finally {
      m.close();
    }
  });

  it('an empty hash map yields nothing; breaking out early is clean', async function () {
    const m = BpfMap.create({ type: 'hash', keySize: 4, valueSize: 8, maxEntries: 64 });
    try {
      assert.deepEqual(await collect(m.entries()), []);
      assert.deepEqual(await collect(m.entries({ batch: false })), []);
      for (let k = 0; k < 64; k++) m.update(k, k);
      let n = 0;
      for await (const e of m.entries({ batchSize: 8 })) {
        assert.ok(e[0].length === 4);
        if (++n === 3) break;
      }
      assert.equal(n, 3);
      assert.equal((await collect(m.entries({ batchSize: 8 }))).length, 64, 'a new iteration starts over');
    } finally {
      m.close();
    }
  });

  it('maps of a loaded object: test_progs hash_map and percpu_hash_map (u64 keys, 4-byte values)', async function () {
    const o = new BpfObject(obj('test_progs')).load();
    try {
      const h = o.map('hash_map').raw;
      const expected: string[] = [];
      for (let k = 0; k < 64; k++) {
        h.update(k * 3, valueOf(k));
        expected.push(`${u32(k * 3).toString('hex')}=${u64(valueOf(k)).toString('hex')}`);
      }
      const got = await collect(h.entries({ batchSize: 16 }));
      assert.deepEqual(pairs(got), expected.sort());
      assert.deepEqual(pairs(h), pairs(got));

      const p = o.map('percpu_hash_map').raw;
      const pexp: string[] = [];
      for (let k = 0; k < 16; k++) {
        const vals = Array.from({ length: CPUS }, (_, c) => (k * 16 + c + 1) >>> 0);
        p.update(BigInt(k) << 40n, vals);
        const key = u64(BigInt(k) << 40n).toString('hex');
        pexp.push(`${key}=${vals.map((v) => u32(v).toString('hex')).join('/')}`);
      }
      const pgot = await collect(p.entries({ batchSize: 4 }));
      for (const [k, v] of pgot) {
        assert.equal(k.length, 8);
        assert.ok(Array.isArray(v) && v.length === CPUS && v.every((b) => b.length === 4), 'one 4-byte Buffer per CPU');
      }
      assert.deepEqual(pairs(pgot), pexp.sort());
    } finally {
      o.close();
    }
  });

  it('BTF-defined maps stream decoded: [number, bigint] in batches, per-CPU arrays, watch() changes with decoded keys', async function () {
    const o = new BpfObject(obj('test_progs')).load();
    try {
      const h = o.map<number, bigint>('hash_map'); // __u32 -> __u64
      for (let k = 0; k < 50; k++) h.update(k, BigInt(k) * 1_000_000_000_000n);
      const got = await collect(h.entries({ batchSize: 8 }));
      assert.deepEqual(got.sort((a, b) => a[0] - b[0]), Array.from({ length: 50 }, (_, k) => [k, BigInt(k) * 1_000_000_000_000n]));
      assert.deepEqual([...h].sort((a, b) => a[0] - b[0]), got);
      const byKey = await collect(h.entries({ batch: false }));
      assert.equal(byKey.length, 50);
      assert.ok(byKey.every(([k, v]) => typeof k === 'number' && v === BigInt(k) * 1_000_000_000_000n));

      const p = o.map<bigint, PerCpu<number>>('percpu_hash_map'); // __u64 -> __u32 per CPU
      p.update(1n << 40n, Array.from({ length: CPUS }, (_, c) => c + 1));
      const pgot = await collect(p.entries({ batchSize: 2 }));
      assert.deepEqual(pgot, [[1n << 40n, Array.from({ length: CPUS }, (_, c) => c + 1)]]);

      const it = h.watch({ intervalMs: 20, changes: true });
      try {
        const first = await it.next();
        assert.equal(first.done ? 0 : first.value.updated.length, 50);
        h.update(7, 7n);
        assert.equal(h.delete(8), true);
        const second = await it.next();
        assert.deepEqual(second.done ? undefined : second.value, { updated: [[7, 7n]], deleted: [8] });
      } finally {
        await it.return!(undefined);
      }
    } finally {
      o.close();
    }
  });

  describe('bad input', function () {
    it('batchSize 0 or 1.5: RangeError ERR_OUT_OF_RANGE when iterated; a string: TypeError ERR_INVALID_ARG_TYPE', async function () {
      const m = BpfMap.create({ type: 'hash', keySize: 4, valueSize: 8, maxEntries: 8 });
      try {
        m.update(1, 1);
        await noFdLeak(async () => {
          for (const batchSize of [0, 1.5, -1, 2 ** 25]) {
            isError(await failure(() => collect(m.entries({ batchSize }))), RangeError, 'ERR_OUT_OF_RANGE', /batchSize/);
          }
          const e = await failure(() => collect(m.entries({ batchSize: '4' as unknown as number })));
          isError(e, TypeError, 'ERR_INVALID_ARG_TYPE', /batchSize/);
        });
      } finally {
        m.close();
      }
    });

    it('opts that are not an object: TypeError ERR_INVALID_ARG_TYPE, as everywhere else in the library', async function () {
      const m = BpfMap.create({ type: 'hash', keySize: 4, valueSize: 8, maxEntries: 8 });
      try {
        const e = await failure(() => collect(m.entries(null as unknown as MapEntriesOptions)));
        const w = await failure(() => m.watch(null as unknown as MapWatchOptions & { changes?: false }).next());
        const shape = (x: unknown): string =>
          `${x instanceof Error ? x.name : typeof x} ${String((x as { code?: unknown }).code)}`;
        assert.deepEqual({ entries: shape(e), watch: shape(w) },
          { entries: 'TypeError ERR_INVALID_ARG_TYPE', watch: 'TypeError ERR_INVALID_ARG_TYPE' },
          `entries(null): ${String(e)}; watch(null): ${String(w)}`);
      } finally {
        m.close();
      }
    });

    it('entries() of a closed map, of a closed object, of an object not loaded: TypeError ERR_INVALID_STATE', async function () {
      const m = BpfMap.create({ type: 'hash', keySize: 4, valueSize: 8, maxEntries: 8, name: 'closed_map' });
      m.update(1, 1);
      m.close();
      isError(await failure(() => collect(m.entries())), TypeError, 'ERR_INVALID_STATE', /closed_map/);
      isError(await failure(() => [...m.entries()]), TypeError, 'ERR_INVALID_STATE', /closed_map/);
      isError(await failure(() => m.watch({ intervalMs: 10 }).next()), TypeError, 'ERR_INVALID_STATE', /closed_map/);

      const o = new BpfObject(obj('test_progs'));
      try {
        const h = o.map('hash_map');
        isError(await failure(() => collect(h.entries())), TypeError, 'ERR_INVALID_STATE', /hash_map/);
        o.load();
        o.close();
        isError(await failure(() => collect(h.entries())), TypeError, 'ERR_INVALID_STATE', /hash_map/);
      } finally {
        o.close();
      }
    });
  });
});

describe('BpfMap: watch()', function () {
  this.timeout(10_000);
  let m: BpfMap<Buffer, Buffer>;
  beforeEach(() => {
    m = BpfMap.create({ type: 'hash', keySize: 4, valueSize: 8, maxEntries: 64 });
    for (let k = 1; k <= 5; k++) m.update(k, valueOf(k));
  });
  afterEach(() => m.close());

  const expectedPairs = (keys: number[]): string[] =>
    keys.map((k) => `${u32(k).toString('hex')}=${u64(valueOf(k)).toString('hex')}`).sort();

  it('the first tick is an immediate snapshot of the whole map', async function () {
    const it = m.watch({ intervalMs: 5_000 });
    const t0 = Date.now();
    const first = await it.next();
    const ms = Date.now() - t0;
    assert.equal(first.done, false);
    assert.ok(ms < 1_000, `first tick after ${ms} ms`);
    if (!first.done) assert.deepEqual(pairs(first.value), expectedPairs([1, 2, 3, 4, 5]));
    assert.deepEqual(await stop(it), { value: undefined, done: true });
  });

  it('changes: true reports exactly the new and changed entries and the deleted keys', async function () {
    const it = m.watch({ intervalMs: 20, changes: true });
    try {
      const first = await it.next();
      assert.equal(first.done, false);
      if (first.done) return;
      assert.deepEqual(pairs(first.value.updated), expectedPairs([1, 2, 3, 4, 5]), 'first tick: everything is new');
      assert.deepEqual(first.value.deleted, []);

      m.update(2, 42n); // changed
      m.update(3, valueOf(3)); // rewritten with the same value: no change
      m.update(9, valueOf(9)); // new
      assert.equal(m.delete(5), true); // deleted
      const second = await it.next();
      assert.equal(second.done, false);
      if (second.done) return;
      assert.deepEqual(pairs(second.value.updated), [`${u32(2).toString('hex')}=${u64(42n).toString('hex')}`, ...expectedPairs([9])].sort());
      assert.deepEqual(second.value.deleted.map((k) => k.toString('hex')), [u32(5).toString('hex')]);

      const third = await it.next();
      assert.deepEqual(third, { value: { updated: [], deleted: [] }, done: false }, 'nothing changed');
    } finally {
      await stop(it);
    }
  });

  it('ticks every intervalMs (two ticks at 50 ms take at least 2 x 45 ms)', async function () {
    const it = m.watch({ intervalMs: 50 });
    try {
      await it.next();
      const t0 = Date.now();
      await it.next();
      const t1 = Date.now();
      await it.next();
      const t2 = Date.now();
      assert.ok(t1 - t0 >= 45 && t2 - t1 >= 45, `ticks ${t1 - t0} ms and ${t2 - t1} ms apart`);
      assert.ok(t2 - t0 < 1_000, `two 50 ms ticks took ${t2 - t0} ms`);
    } finally {
      await stop(it);
    }
  });

  it('abort() (no reason) ends the iteration with an AbortError', async function () {
    const ac = new AbortController();
    const it = m.watch({ intervalMs: 50, signal: ac.signal });
    assert.equal((await it.next()).done, false);
    const tick = it.next();
    setTimeout(() => ac.abort(), 10);
    const e = await failure(() => tick);
    assert.ok(e instanceof Error && e.name === 'AbortError', `expected an AbortError, got ${String(e)}`);
    assert.deepEqual(await it.next(), { value: undefined, done: true }, 'the iteration is over');
  });

  it('abort(reason): the iteration rejects with that reason, whenever the signal aborts', async function () {
    const wrong: string[] = [];
    const check = (when: string, e: unknown, reason: Error): void => {
      if (e !== reason) wrong.push(`${when}: rejected with ${String(e)}${e instanceof Error && e.cause === reason ? ' (cause: the reason)' : ''}`);
    };

    // while the iteration waits for the next tick
    const a = new AbortController();
    const ra = new Error('stop while waiting');
    const ita = m.watch({ intervalMs: 50, signal: a.signal });
    await ita.next();
    const pending = ita.next();
    setTimeout(() => a.abort(ra), 10);
    check('during the interval', await failure(() => pending), ra);

    // between ticks, before the next read
    const b = new AbortController();
    const rb = new Error('stop between ticks');
    const itb = m.watch({ intervalMs: 50, signal: b.signal });
    await itb.next();
    b.abort(rb);
    check('before the next read', await failure(() => itb.next()), rb);

    // already aborted when watch() starts
    const rc = new Error('stop before the start');
    check('before the first tick', await failure(() => m.watch({ intervalMs: 50, signal: AbortSignal.abort(rc) }).next()), rc);

    assert.deepEqual(wrong, [], 'rejections that are not the signal\'s reason');
  });

  it('a per-CPU map: snapshots hold one Buffer per CPU; a change on one CPU is a change', async function () {
    const p = BpfMap.create({ type: 'percpu_array', keySize: 4, valueSize: 8, maxEntries: 4 });
    try {
      for (let k = 0; k < 4; k++) p.update(k, Array.from({ length: CPUS }, (_, c) => valueOf(k, c)));
      const snap = await p.watch({ intervalMs: 20 }).next();
      assert.equal(snap.done, false);
      if (snap.done) return;
      assert.equal(snap.value.length, 4);
      for (const [k, v] of snap.value) {
        assert.ok(Array.isArray(v) && v.length === CPUS, 'one value per possible CPU');
        v.forEach((b, c) => assert.equal(b.readBigUInt64LE(), valueOf(k.readUInt32LE(), c)));
      }

      const it = p.watch({ intervalMs: 20, changes: true });
      try {
        await it.next();
        const vals = Array.from({ length: CPUS }, (_, c) => valueOf(2, c));
        vals[CPUS - 1] = 99n; // only the last CPU's slot changes
        p.update(2, vals);
        const r = await it.next();
        assert.equal(r.done, false);
        if (r.done) return;
        assert.deepEqual(r.value.updated.map(([k, v]) => [k.readUInt32LE(), v.map((b) => b.readBigUInt64LE())]), [[2, vals]]);
        assert.deepEqual(r.value.deleted, []);
      } finally {
        await stop(it);
      }
    } finally {
      p.close();
    }
  });

  it('bad input: intervalMs 0 or 1.5 is a RangeError ERR_OUT_OF_RANGE', async function () {
    for (const intervalMs of [0, -5, 1.5]) {
      isError(await failure(() => m.watch({ intervalMs }).next()), RangeError, 'ERR_OUT_OF_RANGE', /intervalMs/);
    }
    isError(await failure(() => m.watch({ intervalMs: '50' as unknown as number }).next()), TypeError, 'ERR_INVALID_ARG_TYPE');
  });
});
