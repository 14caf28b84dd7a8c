// execsnoop: a tracepoint program (sched/sched_process_exec) sends one ring
// buffer record per exec(); this prints pid, ppid, comm and file name live.
//
//   npm run execsnoop                 # until Ctrl-C
//   npm run execsnoop -- --count 5    # stop after 5 execs
//
// A ring buffer has no lost-record notice: the BPF program counts the
// records it had no room for (`dropped`, in .bss), and this prints the
// count at exit. Outside this repository, import from 'libbpf-node'.
import { RingBuffer } from '../ts/index.js';
import { ExecsnoopSkeleton, type Event } from './execsnoop.skel.js';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const i = args.indexOf('--count');
  const count = i >= 0 ? Number(args[i + 1]) : Infinity;

  const skel = new ExecsnoopSkeleton().load();
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  process.once('SIGTERM', () => ac.abort());
  // Records decode as the program's struct event (its interface comes from
  // the generated skeleton, execsnoop.skel.ts).
  const events = new RingBuffer<Event>(skel.maps.events, { type: 'struct event', signal: ac.signal });
  skel.attach();
  console.log(`${'PID'.padEnd(8)}${'PPID'.padEnd(8)}${'COMM'.padEnd(17)}FILENAME`);
  let seen = 0;
  try {
    for await (const e of events) {
      console.log(`${String(e.pid).padEnd(8)}${String(e.ppid).padEnd(8)}${e.comm.padEnd(17)}${e.filename}`);
      if (++seen >= count) break;
    }
  } catch (e) {
    if (!ac.signal.aborted) throw e;
  } finally {
    console.error(`${seen} execs, ${skel.bss.dropped} dropped by the BPF side`);
    skel.close();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
