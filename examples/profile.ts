// profile: a CPU profiler of the whole system or of one process (like
// bcc's profile): a perf_event program samples every CPU at a frequency
// (a software cpu-clock event, so it works in VMs too) and counts kernel
// and user stacks per thread (bpf/profile.bpf.c); at the end the stacks are
// symbolized (Symbolizer.kernel() for kallsyms, Symbolizer.process(pid) for
// ELF symbols and the perf map of a JIT, e.g. node --perf-basic-prof) and
// printed as bcc does, or as folded stacks, or written as a pprof profile
// or a self-contained flame graph page.
//
//   npm run profile -- 10                       # all CPUs for 10 s, stacks on stdout
//   npm run profile -- -p 1234 -F 99 -f 5       # one process, folded stacks
//   npm run profile -- --html flame.html 5      # a flame graph page
//   npm run profile -- --pprof cpu.pb.gz 5      # for `go tool pprof` / pprof.me
//
// Outside this repository, import from 'libbpf-node'.
import * as path from 'node:path';
import { BpfObject, Symbolizer, type BpfLink } from '../ts/index.js';
import { droppedSamples, readStacks, stackArgs, stackOptionHelp, STACK_OPTIONS, writeStacks } from './stacks.js';
import { intArg, numberArg, parseTool, runTool, sleepUnlessAborted, UsageError } from './tool.js';

const NAME = 'profile';
const { values, positionals } = parseTool({
  name: NAME,
  summary: 'Profile CPU usage by sampling kernel and user stack traces at a timed interval.',
  positionals: '[duration]',
  options: {
    ...STACK_OPTIONS,
    frequency: { type: 'string', short: 'F' },
    'include-idle': { type: 'boolean', short: 'I' },
  },
  describe: {
    ...stackOptionHelp('profile', 'count'),
    frequency: 'sample frequency in Hz, per CPU (default 99)',
    'include-idle': 'include the idle task (pid 0)',
  },
  examples: [
    ['profile', 'profile all CPUs at 99 Hz until Ctrl-C'],
    ['profile 5', 'profile for 5 seconds'],
    ['profile -p 185 -F 999 10', 'process 185 only, at 999 Hz, for 10 seconds'],
    ['profile -f 5 > out.folded', 'folded stacks, for flamegraph.pl'],
    ['profile --html flame.html 5', 'a flame graph page that opens without network'],
    ['profile --pprof cpu.pb.gz 5', 'a pprof profile (go tool pprof -http=: cpu.pb.gz)'],
  ],
});

async function main(signal: AbortSignal): Promise<void> {
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
  const duration = numberArg('duration', positionals[0], Infinity, 0.001);
  const { pid, storage, userOnly, kernelOnly } = stackArgs(values);
  const freq = intArg('--frequency', values.frequency, 99, 1, 100_000);

  const obj = new BpfObject(path.join(__dirname, '..', '..', 'bpf', 'profile.bpf.o'));
  let links: BpfLink[] = [];
  try {
    obj.rodata['target_tgid'] = pid;
    obj.rodata['user_stacks_only'] = userOnly;
    obj.rodata['kernel_stacks_only'] = kernelOnly;
    obj.rodata['include_idle'] = values['include-idle'] === true;
    obj.map('stacks').maxEntries = storage;
    obj.load();
    // Every CPU: a process's threads run anywhere; the program filters by pid.
    links = obj.program('do_sample').attachPerfEvent({ type: 'software', config: 'cpu-clock', sampleFreq: freq });
    const start = process.hrtime.bigint();
    const startNs = BigInt(Date.now()) * 1_000_000n;
    // Progress goes to stderr so that stdout is only the profile (folded output is piped).
    process.stderr.write(`Sampling at ${freq} Hz of ${pid ? `pid ${pid}` : 'all threads'} by ${userOnly ? 'user' : kernelOnly ? 'kernel' : 'user + kernel'} stack${duration === Infinity ? '... Hit Ctrl-C to end.' : ` for ${duration} secs.`}\n`);
    await sleepUnlessAborted(duration === Infinity ? 2 ** 31 - 1 : duration * 1000, signal);
    for (const l of links) l.detach();
    links = [];
    const durationNs = process.hrtime.bigint() - start;

    const stacks = readStacks(obj, Symbolizer, { userOnly, kernelOnly });
    const total = stacks.reduce((a, s) => a + s.value, 0n);
    const periodNs = BigInt(Math.round(1e9 / freq));
    writeStacks(stacks, values, {
      divisor: 1n,
      textUnit: '',
      htmlUnit: 'samples',
      pprof: {
        sampleTypes: [{ type: 'samples', unit: 'count', factor: 1n }, { type: 'cpu', unit: 'nanoseconds', factor: periodNs }],
        periodType: { type: 'cpu', unit: 'nanoseconds' },
        period: periodNs,
        startNs,
        durationNs,
      },
      title: `CPU flame graph${pid ? ` of pid ${pid}` : ''}`,
      subtitle: `${total} samples at ${freq} Hz over ${(Number(durationNs) / 1e9).toFixed(1)} s, ${new Date(Number(startNs / 1_000_000n)).toISOString()}`,
    });
    const dropped = droppedSamples(obj);
    process.stderr.write(`${total} samples in ${stacks.length} stacks${dropped ? `, ${dropped} dropped (counts map full)` : ''}\n`);
  } finally {
    for (const l of links) l.detach();
    obj.close();
  }
}

runTool(NAME, main);
