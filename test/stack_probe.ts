// What test/26 and test/27 share: the stacks object (bpf/stacks_test.bpf.c)
// set up for one process, and a probe of whether this kernel gives stacks
// where they are collected (Debian's 5.10 under emulation answered EFAULT
// to bpf_get_stackid() from a syscall tracepoint).
import { BpfObject, type BpfLink } from '../ts/index.js';
import { ensureTracefs, obj } from './helpers.js';

export const DEPTH = 64;

/** Kernel and user stack ids of one sample (negative: bpf_get_stackid's -errno). */
export interface StackKey { kstack: number; ustack: number }

/** The stacks object, loaded for process `tgid`. */
export function stacksObject(tgid: number): BpfObject {
  const o = new BpfObject(obj('stacks_test'));
  o.rodata.target_tgid = tgid;
  return o.load();
}

/** Runs `fn` with the getppid() tracepoint program attached. */
export function withTracepoint(o: BpfObject, fn: () => void): void {
  ensureTracefs();
  const link: BpfLink = o.program('stack_getppid').attachTracepoint('syscalls', 'sys_enter_getppid');
  try {
    fn();
  } finally {
    link.detach();
  }
}

/** The samples counted per stack pair. */
export function sampled(o: BpfObject): Array<[StackKey, bigint]> {
  return [...o.map<StackKey, bigint>('counts').entries()];
}

const probed = new Map<'kernel' | 'user', true | string>();
/**
 * true where a getppid() tracepoint gets this process's `which` (kernel or
 * user) stack into the stack map, else what the kernel answered instead.
 */
export function tracepointStacks(which: 'kernel' | 'user'): true | string {
  const known = probed.get(which);
  if (known !== undefined) return known;
  let keys: StackKey[];
  try {
    // run while mocha collects the tests: a failure here is a reason, not a crash of the run
    using o = stacksObject(process.pid);
    withTracepoint(o, () => {
      for (let i = 0; i < 5; i++) void process.ppid;
    });
    keys = sampled(o).map(([k]) => k);
  } catch (e) {
    const answer = `the stacks object did not load and attach: ${(e as Error).message.split('\n')[0]}`;
    probed.set(which, answer);
    return answer;
  }
  const id = (k: StackKey): number => (which === 'kernel' ? k.kstack : k.ustack);
  let answer: true | string;
  if (keys.length === 0) answer = 'the getppid() tracepoint did not run';
  else if (keys.some((k) => id(k) >= 0)) answer = true;
  else answer = `bpf_get_stackid() of ${which} stacks from a syscall tracepoint gives ${keys.map(id).join(', ')} on this kernel (-14: EFAULT)`;
  probed.set(which, answer);
  return answer;
}
