// Decoding cost: the same 64-byte records (struct event64) through
// `for await` on a RingBuffer, raw and decoded from BTF ({type}). The ring is
// filled by a BPF_PROG_TEST_RUN producer first, then drained; only draining
// is timed. One JSON line: records/s both ways and ns per record of decoding.
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { BpfObject, RingBuffer } from '../ts/index.js';

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 40);
  const perRound = 100_000; // 72 bytes each with the ring header: under the 8 MiB ring
  const obj = new BpfObject(path.join(__dirname, '..', '..', 'bpf', 'stream_test.bpf.o'));
  obj.map('ring_a').maxEntries = 8 << 20;
  obj.load();
  obj.map('event64_template').update(0, { pid: 4242, tid: 4243, cpu: 1, ret: -2, comm: 'benchmark', b: 7n, c: 8n });
  const args = Buffer.alloc(32);
  args.writeBigUInt64LE(BigInt(perRound), 8);
  const produce = (): void => void obj.program('produce64').testRun({ ctx: args });

  const run = async (decoded: boolean): Promise<number> => {
    const rb = new RingBuffer<unknown>(obj.map('ring_a'), decoded ? { type: 'struct event64' } : {});
    const it = rb[Symbol.asyncIterator]();
    let seconds = 0;
    let check = 0;
    for (let r = 0; r < rounds; r++) {
      produce();
      const t0 = performance.now();
      for (let n = 0; n < perRound; n++) {
        const { value } = await it.next();
        if (decoded) check += (value as { pid: number }).pid === 4242 ? 1 : 0;
        else check += (value as Buffer).length === 64 ? 1 : 0;
      }
      seconds += (performance.now() - t0) / 1000;
    }
    rb.close();
    if (check !== rounds * perRound) throw new Error(`checked ${check} records`);
    return (rounds * perRound) / seconds;
  };
  await run(true); // warm up both paths
  await run(false);
  const raw = await run(false);
  const decoded = await run(true);
  obj.close();
  console.log(JSON.stringify({
    mode: 'decode', recordBytes: 64, records: rounds * perRound, rawPerSecond: raw, decodedPerSecond: decoded,
    decodeNsPerRecord: 1e9 / decoded - 1e9 / raw, decodedOverRaw: decoded / raw,
  }));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
