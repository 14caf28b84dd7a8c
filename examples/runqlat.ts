// runqlat: how long tasks wait on the run queue, as a log2 histogram of
// microseconds printed every interval (like bcc's runqlat). It uses the
// generated skeleton (runqlat.skel.ts, `npm run gen:skeletons`): the
// histogram map's value is typed as the program's struct hist.
//
//   npm run runqlat                        # 1-second intervals, until Ctrl-C
//   npm run runqlat -- --interval 2 --count 3
//
// Outside this repository, import from 'libbpf-node'.
import { setTimeout as sleep } from 'node:timers/promises';
import { formatLog2Hist } from '../ts/index.js';
import { RunqlatSkeleton } from './runqlat.skel.js';

async function main(): Promise<void> {
  const arg = (name: string, dflt: number): number => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? Number(process.argv[i + 1]) : dflt;
  };
  const interval = arg('--interval', 1);
  const count = arg('--count', Infinity);
  const skel = new RunqlatSkeleton().load();
  skel.attach();
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  const hists = skel.maps.hists;
  console.log('Tracing run queue latency... Hit Ctrl-C to end.');
  try {
    for (let n = 0; n < count; n++) {
      await sleep(interval * 1000, undefined, { signal: ac.signal });
      const { slots } = hists.lookup(0)!;
      hists.update(0, { slots: new Uint32Array(slots.length) });
      console.log(`\n${formatLog2Hist(slots, 'usecs')}`);
    }
  } catch (e) {
    if (!ac.signal.aborted) throw e;
  } finally {
    skel.close();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
