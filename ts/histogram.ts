// Terminal histograms of log2 buckets, in the format of bcc's and
// libbpf-tools' print_log2_hist(), so output reads like runqlat's or
// biolatency's. Bucket i counts values v with 2^i <= v + 1 < 2^(i+1) (as the
// BPF side's log2l() files them).

function stars(val: number, max: number, width: number): string {
  const n = Math.floor((Math.min(val, max) * width) / max);
  return '*'.repeat(n) + ' '.repeat(width - n) + (val > max ? '+' : '');
}

/**
 * The values log2 slot `i` holds, as bcc's and libbpf-tools' log2l() file
 * integers: `low` … `high` inclusive, 2^i … 2^(i+1) - 1, except slot 0
 * which holds 0 and 1. The metrics export takes `high` as a bucket's `le`.
 */
export function log2SlotRange(i: number): { low: bigint; high: bigint } {
  const high = 2n ** BigInt(i + 1) - 1n;
  const low = i === 0 ? 0n : 2n ** BigInt(i);
  return { low, high };
}

/**
 * The histogram of `buckets` (counts per log2 slot, as a BPF program's
 * log2l() files them: slot i counts values v with 2^i <= v + 1 < 2^(i+1)) as
 * text in the format of bcc's and libbpf-tools' print_log2_hist(), one line
 * per slot up to the last non-empty one; '' when every slot is empty.
 *
 * @param unit The column title (default 'usecs').
 * @example
 * ```ts
 * // struct hist { __u32 slots[26]; } as runqlat keeps it
 * const hist = obj.map<number, { slots: Uint32Array }>('hists').lookup(0);
 * if (hist) process.stdout.write(formatLog2Hist(hist.slots, 'usecs'));
 * ```
 */
export function formatLog2Hist(buckets: ArrayLike<number | bigint>, unit = 'usecs'): string {
  const vals = Array.from(buckets, Number);
  let idxMax = -1;
  let valMax = 0;
  vals.forEach((v, i) => {
    if (v > 0) idxMax = i;
    if (v > valMax) valMax = v;
  });
  if (idxMax < 0) return '';
  const wide = idxMax > 32;
  const lines = [`${' '.repeat(wide ? 15 : 5)}${unit.padEnd(wide ? 29 : 19)} : count    distribution`];
  const width = wide ? 20 : 10;
  for (let i = 0; i <= idxMax; i++) {
    const { low, high } = log2SlotRange(i);
    lines.push(`${String(low).padStart(width)} -> ${String(high).padEnd(width)} : ${String(vals[i]).padEnd(8)} |${stars(vals[i]!, valMax, wide ? 20 : 40)}|`);
  }
  return `${lines.join('\n')}\n`;
}
