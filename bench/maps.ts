// Per-op map access from Node, as bench/maps.c does it in C: N lookups and
// N updates on an array and a hash of 1024 u32 -> u64, raw (BpfMap.create:
// number keys, Buffer values) and typed (mapfast_test's BTF-typed twins:
// number keys, bigint values); then an mmapable array read N times through
// map.memory() (a BigUint64Array over the mapping) and N times by lookup().
// CPU time; each loop runs 5 times, the fastest counts. One JSON line of ns per op.
//   node dist/bench/maps.js N
import * as path from 'node:path';
import { BpfMap, BpfObject } from '../ts/index.js';

const ENTRIES = 1024;
const BPF_F_MMAPABLE = 1 << 10;
let sink = 0;

// CPU time of the process (user + system) per op, the fastest of 5 runs:
// as bench/maps.c measures, so that other load on the machine counts for
// neither side.
function best(n: number, loop: () => void): number {
  let min = Infinity;
  for (let r = 0; r < 5; r++) {
    const t0 = process.cpuUsage();
    loop();
    const t = process.cpuUsage(t0);
    min = Math.min(min, ((t.user + t.system) * 1000) / n);
  }
  return min;
}

function lookups(m: BpfMap<number, unknown>, n: number): number {
  return best(n, () => {
    for (let i = 0; i < n; i++) if (m.lookup(i & (ENTRIES - 1)) !== undefined) sink++;
  });
}

function updates(m: BpfMap<number, unknown>, n: number): number {
  return best(n, () => {
    for (let i = 0; i < n; i++) m.update(i & (ENTRIES - 1), i);
  });
}

function main(): void {
  const n = Number(process.argv[2] ?? 500_000);
  const create = (type: 'array' | 'hash', flags = 0): BpfMap<number, unknown> =>
    BpfMap.create({ type, keySize: 4, valueSize: 8, maxEntries: ENTRIES, flags }) as unknown as BpfMap<number, unknown>;
  const array = create('array');
  const hash = create('hash');
  const mmapable = create('array', BPF_F_MMAPABLE);
  for (let k = 0; k < ENTRIES; k++) {
    hash.update(k, k);
    mmapable.update(k, k);
  }
  const o = new BpfObject(path.join(__dirname, '..', '..', 'bpf', 'mapfast_test.bpf.o'));
  o.load();
  const tArray = o.map('bench_array') as BpfMap<number, bigint>;
  const tHash = o.map('bench_hash') as BpfMap<number, bigint>;
  for (let k = 0; k < ENTRIES; k++) tHash.update(k, k);
  if (typeof tHash.lookup(5) !== 'bigint') throw new Error('bench_hash is not typed');

  const r = {
    consumer: 'node', ops: n,
    arrayLookupNs: lookups(array, n), arrayUpdateNs: updates(array, n),
    hashLookupNs: lookups(hash, n), hashUpdateNs: updates(hash, n),
    typedArrayLookupNs: lookups(tArray, n), typedArrayUpdateNs: updates(tArray, n),
    typedHashLookupNs: lookups(tHash, n), typedHashUpdateNs: updates(tHash, n),
    mmapableSyscallLookupNs: lookups(mmapable, n),
    mmapReadNs: 0, mmapDataViewReadNs: 0,
  };
  const u64 = new BigUint64Array(mmapable.memory().buffer, 0, ENTRIES);
  const dv = mmapable.memory();
  const reads = Math.max(n, 10_000_000);
  r.mmapReadNs = best(reads, () => {
    let sum = 0n;
    for (let i = 0; i < reads; i++) sum += u64[i & (ENTRIES - 1)]!;
    sink += Number(sum & 1n);
  });
  r.mmapDataViewReadNs = best(reads, () => {
    let sum = 0;
    for (let i = 0; i < reads; i++) sum += dv.getUint32((i & (ENTRIES - 1)) * 8, true);
    sink += sum & 1;
  });
  o.close();
  for (const m of [array, hash, mmapable]) m.close();
  console.log(JSON.stringify({ ...r, sink }));
}

main();
