// Map iteration in Node: a hash map of ENTRIES u32 -> u64 read key by key
// (for...of: bpf_map_get_next_key + lookup) and in batches (for await:
// bpf_map_lookup_batch), as bench/consumer.c mapiter does, and in one
// lookupBatch() call (the same kernel batches, gathered into an array), and
// lookupBatchRaw() (the same batches into two columns, every value summed),
// and lookupBatchInto() (the same batches into two reused buffers, as C).
// One JSON line.
import { performance } from 'node:perf_hooks';
import { BpfMap, MapBatchCursor } from '../ts/index.js';

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
  // BigInt per value would measure BigInt allocation. Read through a
  // Uint32Array over the column, as C reads through a uint64_t pointer
  // (Buffer#readUInt32LE per value cost 15-30 ms of the million here).
  let lookupBatchRaw = Infinity;
  for (let round = 0; round < 3; round++) {
    t0 = performance.now();
    const cols = map.lookupBatchRaw();
    let sum = 0;
    const vals = new Uint32Array(cols.values.buffer, cols.values.byteOffset, cols.count * 2);
    for (let i = 0; i < vals.length; i += 2) sum += vals[i]! + vals[i + 1]! * 0x1_0000_0000;
    lookupBatchRaw = Math.min(lookupBatchRaw, (performance.now() - t0) / 1000);
    if (cols.count !== entries || sum !== (entries * (entries - 1)) / 2) throw new Error(`lookupBatchRaw() saw ${cols.count}`);
  }
  // lookupBatchInto(): C's loop exactly, 4096 entries per call into the
  // same two buffers (no allocation, no fresh pages).
  let lookupBatchInto = Infinity;
  const kb = Buffer.alloc(4096 * 4);
  const vb = Buffer.alloc(4096 * 8);
  const vw = new Uint32Array(vb.buffer, vb.byteOffset, 4096 * 2);
  for (let round = 0; round < 3; round++) {
    t0 = performance.now();
    const cursor = new MapBatchCursor();
    let sum = 0;
    let seen = 0;
    for (let got; (got = map.lookupBatchInto(cursor, kb, vb)) > 0;) {
      for (let i = 0; i < 2 * got; i += 2) sum += vw[i]! + vw[i + 1]! * 0x1_0000_0000;
      seen += got;
    }
    lookupBatchInto = Math.min(lookupBatchInto, (performance.now() - t0) / 1000);
    if (seen !== entries || sum !== (entries * (entries - 1)) / 2) throw new Error(`lookupBatchInto() saw ${seen}`);
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
    consumer: 'node', mode: 'mapiter', entries, keyByKeySeconds: keyByKey, batchSeconds: batch, lookupBatchSeconds: lookupBatch, lookupBatchRawSeconds: lookupBatchRaw, lookupBatchIntoSeconds: lookupBatchInto, checked: n,
  }));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
