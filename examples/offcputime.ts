// offcputime: where threads block, by stack (like bcc's offcputime): a
// tp_btf/sched_switch program (bpf/offcpu.bpf.c) takes the stacks of the
// thread leaving the CPU and adds the time until it runs again to them.
// The output forms are those of profile.ts (examples/stacks.ts): bcc's
// stacks with microseconds, folded stacks (values in microseconds, as
// bcc's -f), a pprof profile (nanoseconds) or a flame graph page.
//
//   npm run offcputime -- 5                        # all threads for 5 s
//   npm run offcputime -- -p 1234 -f 5             # one process, folded
//   npm run offcputime -- --html offcpu.html 5
//
// Outside this repository, import from 'libbpf-node'.
import * as path from 'node:path';
import { BpfObject, Symbolizer, type BpfLink } from '../ts/index.js';
import { droppedSamples, readStacks, stackArgs, stackOptionHelp, STACK_OPTIONS, writeStacks } from './stacks.js';
import { intArg, numberArg, parseTool, runTool, sleepUnlessAborted, UsageError } from './tool.js';

const NAME = 'offcputime';
const { values, positionals } = parseTool({
  name: NAME,
  summary: 'Summarize off-CPU time (blocked, waiting, sleeping) by kernel and user stack trace.',
  positionals: '[duration]',
  options: {
    ...STACK_OPTIONS,
    'min-block-time': { type: 'string', short: 'm' },
    'max-block-time': { type: 'string', short: 'M' },
  },
  describe: {
    ...stackOptionHelp('trace', 'microseconds', ' (off-CPU nanoseconds)'),
    'user-stacks-only': 'show user stacks only (no kernel frames, no kernel threads)',
    'min-block-time': 'count only spells off CPU of at least this many microseconds (default 1)',
    'max-block-time': 'count only spells off CPU of at most this many microseconds',
  },
  examples: [
    ['offcputime', 'trace off-CPU stacks until Ctrl-C'],
    ['offcputime 5', 'trace for 5 seconds'],
    ['offcputime -p 185 -m 1000 5', 'process 185, spells of 1 ms or more'],
    ['offcputime -f 5 > out.folded', 'folded stacks, for flamegraph.pl'],
    ['offcputime --html offcpu.html 5', 'a flame graph page that opens without network'],
  ],
});

async function main(signal: AbortSignal): Promise<void> {
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
  const duration = numberArg('duration', positionals[0], Infinity, 0.001);
  const { pid, storage, userOnly, kernelOnly } = stackArgs(values);
  const minUs = intArg('--min-block-time', values['min-block-time'], 1, 0);
  const maxUs = intArg('--max-block-time', values['max-block-time'], Number.MAX_SAFE_INTEGER, 1);
  if (maxUs < minUs) throw new UsageError(`--max-block-time ${maxUs} is below --min-block-time ${minUs}`);

  const obj = new BpfObject(path.join(__dirname, '..', '..', 'bpf', 'offcpu.bpf.o'));
  let link: BpfLink | undefined;
  try {
    obj.rodata['target_tgid'] = pid;
    obj.rodata['user_stacks_only'] = userOnly;
    obj.rodata['kernel_stacks_only'] = kernelOnly;
    obj.rodata['min_ns'] = BigInt(minUs) * 1000n;
    obj.rodata['max_ns'] = values['max-block-time'] === undefined ? 2n ** 64n - 1n : BigInt(maxUs) * 1000n;
    obj.map('stacks').maxEntries = storage;
    obj.load();
    link = obj.program('sched_switch').attach();
    const start = process.hrtime.bigint();
    const startNs = BigInt(Date.now()) * 1_000_000n;
    process.stderr.write(`Tracing off-CPU time (us) of ${pid ? `pid ${pid}` : 'all threads'} by ${userOnly ? 'user' : kernelOnly ? 'kernel' : 'user + kernel'} stack${duration === Infinity ? '... Hit Ctrl-C to end.' : ` for ${duration} secs.`}\n`);
    await sleepUnlessAborted(duration === Infinity ? 2 ** 31 - 1 : duration * 1000, signal);
    link.detach();
    link = undefined;
    const durationNs = process.hrtime.bigint() - start;

    // Values are nanoseconds; the text forms show microseconds, as bcc does.
    const stacks = readStacks(obj, Symbolizer, { userOnly, kernelOnly });
    writeStacks(stacks, values, {
      divisor: 1000n,
      textUnit: 'us',
      htmlUnit: 'us',
      pprof: { sampleTypes: [{ type: 'offcpu', unit: 'nanoseconds', factor: 1n }], startNs, durationNs },
      title: `Off-CPU flame graph${pid ? ` of pid ${pid}` : ''}`,
      subtitle: `off-CPU microseconds by stack over ${(Number(durationNs) / 1e9).toFixed(1)} s, ${new Date(Number(startNs / 1_000_000n)).toISOString()}`,
    });
    const dropped = droppedSamples(obj);
    const total = stacks.reduce((a, s) => a + s.value, 0n);
    process.stderr.write(`${total / 1000n} us off CPU in ${stacks.length} stacks${dropped ? `, ${dropped} spells dropped (counts map full)` : ''}\n`);
  } finally {
    link?.detach();
    obj.close();
  }
}

runTool(NAME, main);
