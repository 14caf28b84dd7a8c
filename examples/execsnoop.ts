// execsnoop: a tracepoint program (sched/sched_process_exec) sends one ring
// buffer record per exec(); this prints pid, ppid, comm and file name live.
//
//   npm run execsnoop                 # until Ctrl-C
//   npm run execsnoop -- --count 5    # stop after 5 execs
//
// A ring buffer has no lost-record notice: the BPF program counts the
// records it had no room for (`dropped`, in .bss), and this prints the
// count at exit. Outside this repository, import from 'libbpf-node'.
import * as path from 'node:path';
import { BpfObject, RingBuffer } from '../ts/index.js';

interface ExecEvent {
  pid: number;
  ppid: number;
  comm: string;
  filename: string;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const i = args.indexOf('--count');
  const count = i >= 0 ? Number(args[i + 1]) : Infinity;

  const obj = new BpfObject(path.join(__dirname, '..', '..', 'bpf', 'execsnoop.bpf.o')).load();
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  process.once('SIGTERM', () => ac.abort());
  // Records decode as the program's struct event, from the object's BTF.
  const events = new RingBuffer<ExecEvent>(obj.map('events'), { type: 'struct event', signal: ac.signal });
  obj.attach();
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
    const bss = obj.map<Buffer>('execsnoo.bss').lookup(0);
    console.error(`${seen} execs, ${bss ? bss.readBigUInt64LE(0) : 0n} dropped by the BPF side`);
    obj.close();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
