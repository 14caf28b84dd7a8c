// runqlat: how long tasks wait on the run queue, as a log2 histogram of
// microseconds printed every interval (like bcc's runqlat). It uses the
// generated skeleton (runqlat.skel.ts, `npm run gen:skeletons`): the
// histogram map's value is typed as the program's struct hist.
//
//   npm run runqlat                   # one histogram at Ctrl-C
//   npm run runqlat -- 2 3            # every 2 seconds, 3 times
//   npm run runqlat -- --help
//
// Outside this repository, import from 'libbpf-node'.
import { formatLog2Hist } from '../ts/index.js';
import { RunqlatSkeleton } from './runqlat.skel.js';
import { intArg, numberArg, parseTool, runTool, sleepUnlessAborted, UsageError } from './tool.js';

const NAME = 'runqlat';
const { values, positionals } = parseTool({
  name: NAME,
  summary: 'Summarize run queue (scheduler) latency as a histogram of microseconds.',
  positionals: '[interval [count]]',
  options: {
    timestamp: { type: 'boolean', short: 'T' },
  },
  describe: {
    timestamp: 'print a timestamp above each histogram',
  },
  examples: [
    ['runqlat', 'summarize run queue latency until Ctrl-C'],
    ['runqlat 1 10', 'print 1-second summaries, 10 times'],
    ['runqlat -T 5', 'a summary every 5 seconds, with timestamps'],
  ],
});

async function main(signal: AbortSignal): Promise<void> {
  if (positionals.length > 2) throw new UsageError(`unexpected argument '${positionals[2]}'`);
  // bcc: no interval means one summary at Ctrl-C.
  const interval = numberArg('interval', positionals[0], Infinity, 0.001);
  const count = intArg('count', positionals[1], Infinity, 1);
  const skel = new RunqlatSkeleton().load();
  try {
    skel.attach();
    const hists = skel.maps.hists;
    console.log('Tracing run queue latency... Hit Ctrl-C to end.');
    for (let n = 0; n < count; n++) {
      await sleepUnlessAborted(interval === Infinity ? 2 ** 31 - 1 : interval * 1000, signal);
      // The interval cut short by Ctrl-C is printed too, as bcc does.
      const { slots } = hists.lookup(0)!;
      hists.update(0, { slots: new Uint32Array(slots.length) });
      if (values.timestamp) console.log(`\n${new Date().toTimeString().slice(0, 8)}`);
      console.log(`\n${formatLog2Hist(slots, 'usecs')}`);
      if (signal.aborted) break;
    }
  } finally {
    skel.close();
  }
}

runTool(NAME, main);
