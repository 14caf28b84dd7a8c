// Map iteration in Node: a hash map of ENTRIES u32 -> u64 read key by key
// (for...of: bpf_map_get_next_key + lookup) and in batches (for await:
// bpf_map_lookup_batch), as bench/consumer.c mapiter does, and in one
// lookupBatch() call (the same kernel batches, gathered into an array), and
// lookupBatchRaw() (the same batches into two columns, every value summed).
// One JSON line.
import { performance } from 'node:perf_hooks';
import { BpfMap } from '../ts/index.js';

async function main(): Promise<void> {
  const entries = Number(process.argv[2] ?? 1_000_000);
  const map = BpfMap.create({ type: 'hash', keySize: 4, valueSize: 8, maxEntries: entries });
  for (let k = 0; k < entries; k++) map.update(k, BigInt(k));
  let n = 0;
  let t0 = performance.now();
  for (const [, v] of map) if (v.length === 8) n++;
  const keyByKey = (performance.now() - t0) / 1000;
  if (n !== entries) throw new Error(`key by key saw ${n}`);
  // The batch dumps three times each, the fastest counts, as the C
  // consumer's (the first run of a loop also pays for compiling it).
  // lookupBatchRaw() before lookupBatch(), whose million-element array
  // would still be on the heap (and in the collector's way) after it.
  // Values summed as numbers (exact below 2^53), as C sums its u64s: a
  // BigInt per value would measure BigInt allocation.
  let lookupBatchRaw = Infinity;
  for (let round = 0; round < 3; round++) {
    t0 = performance.now();
    const cols = map.lookupBatchRaw();
    let sum = 0;
    const vals = cols.values;
    for (let i = 0; i < cols.count; i++) sum += vals.readUInt32LE(i * 8) + vals.readUInt32LE(i * 8 + 4) * 0x1_0000_0000;
    lookupBatchRaw = Math.min(lookupBatchRaw, (performance.now() - t0) / 1000);
    if (cols.count !== entries || sum !== (entries * (entries - 1)) / 2) throw new Error(`lookupBatchRaw() saw ${cols.count}`);
  }
  let batch = Infinity;
  for (let round = 0; round < 3; round++) {
    n = 0;
    t0 = performance.now();
    for await (const [, v] of map.entries()) if (v.length === 8) n++;
    batch = Math.min(batch, (performance.now() - t0) / 1000);
    if (n !== entries) throw new Error(`batches saw ${n}`);
  }
  t0 = performance.now();
  const all = map.lookupBatch();
  const lookupBatch = (performance.now() - t0) / 1000;
  if (all.length !== entries || all[entries - 1]![1].length !== 8) throw new Error(`lookupBatch() saw ${all.length}`);
  map.close();
  console.log(JSON.stringify({
    consumer: 'node', mode: 'mapiter', entries, keyByKeySeconds: keyByKey, batchSeconds: batch, lookupBatchSeconds: lookupBatch, lookupBatchRawSeconds: lookupBatchRaw, checked: n,
  }));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
