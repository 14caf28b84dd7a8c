// execsnoop: every exec() on the system, with bcc's columns (PCOMM PID PPID
// RET ARGS). execsnoop.bpf.c sends only the used part of each record
// (sizeof(e) - unused bytes: the arguments are NUL-separated in a trailing
// array); the records are decoded by a layout declared here, the same
// struct event as bpf/execsnoop.h, whose trailing array is cut to the bytes
// sent. No offsets here.
//
//   npm run execsnoop                 # until Ctrl-C
//   npm run execsnoop -- --count 5    # stop after 5 execs
//   npm run execsnoop -- --help       # the options (bcc's -x, -n, -T)
//
// A ring buffer has no lost-record notice: the BPF program counts the
// records it had no room for (`dropped`, in .bss), and this prints the
// count at exit. Outside this repository, import from 'libbpf-node'.
import { RingBuffer, struct, type LayoutValue } from '../ts/index.js';
import { ExecsnoopSkeleton } from './execsnoop.skel.js';
import { intArg, parseTool, runTool, UsageError } from './tool.js';

const NAME = 'execsnoop';
const { values } = parseTool({
  name: NAME,
  summary: 'Trace exec() syscalls system-wide: one line per exec with its command, pid, parent pid, return value and arguments.',
  options: {
    fails: { type: 'boolean', short: 'x' },
    name: { type: 'string', short: 'n' },
    time: { type: 'boolean', short: 'T' },
    count: { type: 'string', short: 'c' },
  },
  describe: {
    fails: 'include failed exec()s',
    name: 'only print commands whose name or arguments match this regular expression',
    time: 'include a time column (HH:MM:SS)',
    count: 'exit after this many exec()s',
  },
  examples: [
    ['execsnoop', 'trace all exec() syscalls until Ctrl-C'],
    ['execsnoop -x', 'include failed exec()s'],
    ['execsnoop -n main', 'only print command lines containing "main"'],
    ['execsnoop -T -c 10', 'with timestamps, stop after 10'],
  ],
});

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

async function main(signal: AbortSignal): Promise<void> {
  const count = intArg('--count', values.count, Infinity, 1);
  let filter: RegExp | undefined;
  try {
    filter = values.name === undefined ? undefined : new RegExp(values.name);
  } catch (e) {
    throw new UsageError(`invalid --name: ${(e as Error).message}`);
  }
  const skel = new ExecsnoopSkeleton().load();
  let seen = 0;
  try {
    const events = new RingBuffer(skel.maps.events, { layout: Event, signal });
    skel.attach();
    console.log(`${values.time ? `${'TIME'.padEnd(9)}` : ''}${COLUMNS('PCOMM', 'PID', 'PPID', 'RET', 'ARGS')}`);
    for await (const e of events) {
      if (e.retval !== 0 && !values.fails) continue;
      const args = argv(e);
      if (filter && !filter.test(e.comm) && !filter.test(args)) continue;
      const time = values.time ? `${new Date().toTimeString().slice(0, 8)} ` : '';
      console.log(`${time}${COLUMNS(e.comm, String(e.pid), String(e.ppid), String(e.retval), args)}`);
      if (++seen >= count) break;
    }
  } catch (e) {
    if (!signal.aborted) throw e;
  } finally {
    console.error(`${seen} execs, ${skel.bss.dropped} dropped by the BPF side`);
    skel.close();
  }
}

runTool(NAME, main);
