// Address arguments: bigint (what stacks decode to), or a safe non-negative number.
import { invalidArgType, outOfRange } from '../internal/errors.js';

/** @internal */
export function toAddr(name: string, v: unknown): bigint {
  if (typeof v === 'bigint') {
    if (v < 0n || v > 0xffff_ffff_ffff_ffffn) outOfRange(name, '>= 0n && < 2n ** 64n', v);
    return v;
  }
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) outOfRange(name, 'a non-negative safe integer (or a bigint)', v);
    return BigInt(v);
  }
  return invalidArgType(name, 'of type bigint', v);
}
