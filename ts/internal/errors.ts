// Misuse errors shaped like Node's own (class + `code`), thrown before any
// syscall so that a wrong argument never reaches the kernel.
import { inspect } from 'node:util';

type Code =
  | 'ERR_INVALID_ARG_TYPE'
  | 'ERR_INVALID_ARG_VALUE'
  | 'ERR_OUT_OF_RANGE'
  | 'ERR_INVALID_BUFFER_SIZE'
  | 'ERR_INVALID_STATE'
  | 'ERR_ILLEGAL_CONSTRUCTOR';

export function fail(Ctor: TypeErrorConstructor | RangeErrorConstructor, code: Code, message: string): never {
  const e = new Ctor(message);
  Object.defineProperty(e, 'code', { value: code, enumerable: true, writable: true, configurable: true });
  Error.captureStackTrace(e, fail);
  throw e;
}

function received(v: unknown): string {
  if (v === null || v === undefined) return `Received ${v}`;
  if (typeof v === 'function') return `Received function ${v.name || '<anonymous>'}`;
  if (typeof v === 'object') return `Received an instance of ${v.constructor?.name ?? 'Object'}`;
  return `Received type ${typeof v} (${inspect(v)})`;
}

export function invalidArgType(name: string, expected: string, v: unknown): never {
  return fail(TypeError, 'ERR_INVALID_ARG_TYPE', `The "${name}" argument must be ${expected}. ${received(v)}`);
}

export function invalidArgValue(name: string, v: unknown, reason: string): never {
  return fail(TypeError, 'ERR_INVALID_ARG_VALUE', `The argument '${name}' ${reason}. Received ${inspect(v)}`);
}

export function outOfRange(name: string, range: string, v: unknown): never {
  return fail(RangeError, 'ERR_OUT_OF_RANGE',
    `The value of "${name}" is out of range. It must be ${range}. Received ${inspect(v)}`);
}

export function invalidState(message: string): never {
  return fail(TypeError, 'ERR_INVALID_STATE', message);
}

export function checkInt(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number') invalidArgType(name, 'of type number', v);
  if (!Number.isInteger(v) || v < min || v > max) outOfRange(name, `an integer >= ${min} && <= ${max}`, v);
  return v;
}

export function checkString(name: string, v: unknown): string {
  if (typeof v !== 'string') invalidArgType(name, 'of type string', v);
  if (v.includes('\0')) invalidArgValue(name, v, 'must not contain null bytes');
  return v;
}

/** A name that must be one of `known`; the message lists them. */
export function unknownName(kind: string, name: string, known: Iterable<string>): never {
  const list = [...known].map((n) => `'${n}'`).join(', ');
  return fail(TypeError, 'ERR_INVALID_ARG_VALUE',
    `No ${kind} named ${inspect(name)}; ${list ? `known: ${list}` : `there are none`}`);
}
