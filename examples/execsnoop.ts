// execsnoop: every exec() on the system, with bcc's columns (PCOMM PID PPID
// RET ARGS). execsnoop.bpf.c sends only the used part of each record
// (sizeof(e) - unused bytes: the arguments are NUL-separated in a trailing
// array); the records are decoded by a layout declared here, the same
// struct event as bpf/execsnoop.h, whose trailing array is cut to the bytes
// sent. No offsets here.
//
//   npm run execsnoop                 # until Ctrl-C
//   npm run execsnoop -- --count 5    # stop after 5 execs
//
// A ring buffer has no lost-record notice: the BPF program counts the
// records it had no room for (`dropped`, in .bss), and this prints the
// count at exit. Outside this repository, import from 'libbpf-node'.
import { RingBuffer, struct, type LayoutValue } from '../ts/index.js';
import { ExecsnoopSkeleton } from './execsnoop.skel.js';

// struct event of bpf/execsnoop.h. Btf.fromFile('bpf/execsnoop_types.bpf.o')
// with { type: 'struct event', btf } decodes the same records, with args as
// a string (up to its first NUL: the file name only).
const Event = struct({
  pid: 's32', ppid: 's32', uid: 'u32', retval: 's32', args_count: 's32', args_size: 'u32',
  comm: 'char[16]', args: 'u8[7680]',
}, { name: 'event' });
type Event = LayoutValue<typeof Event>;

const COLUMNS = (pcomm: string, pid: string, ppid: string, ret: string, args: string): string =>
  `${pcomm.padEnd(16)} ${pid.padEnd(7)} ${ppid.padEnd(7)} ${ret.padStart(3)} ${args}`;

function argv(e: Event): string {
  // the arguments sent, NUL-separated, each NUL-terminated
  return Buffer.from(e.args.buffer, e.args.byteOffset, e.args.length).toString('utf8').split('\0').slice(0, e.args_count).join(' ');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const i = args.indexOf('--count');
  const count = i >= 0 ? Number(args[i + 1]) : Infinity;

  const skel = new ExecsnoopSkeleton().load();
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  process.once('SIGTERM', () => ac.abort());
  const events = new RingBuffer(skel.maps.events, { layout: Event, signal: ac.signal });
  skel.attach();
  console.log(COLUMNS('PCOMM', 'PID', 'PPID', 'RET', 'ARGS'));
  let seen = 0;
  try {
    for await (const e of events) {
      console.log(COLUMNS(e.comm, String(e.pid), String(e.ppid), String(e.retval), argv(e)));
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
