// Global variables of an object as a plain-looking object: one property per
// variable of a data section (.rodata, .data, .bss, .data.*), typed by its
// BTF. Before load they are the initial values (libbpf-tools' `const
// volatile` configuration); after load they read and write the memory the
// programs share (.rodata becomes read-only).
import { codecFor, type Codec } from './codec.js';
import { fail } from './internal/errors.js';
import type { BpfMap } from './map.js';

/**
 * The global variables of one data section (.rodata, .data, .bss,
 * .data.*), by name, as BpfObject#globals returns them: each read decodes
 * the variable from the section's memory with its BTF type, each write
 * encodes it there (before load: the initial value libbpf loads; after:
 * the memory the programs share, .rodata being then read-only). Writing an
 * unknown name, defining or deleting a property is a TypeError
 * ERR_INVALID_ARG_VALUE; a value that does not fit its type throws before
 * anything is written. Reading an unknown name gives undefined.
 */
export type Globals = Record<string, unknown>;

interface Var {
  offset: number;
  codec: Codec;
}

export function globalsOf(map: BpfMap, section: string): Globals {
  const btf = map.btf;
  if (!btf) fail(TypeError, 'ERR_INVALID_ARG_VALUE', `map '${map.name}' has no BTF: its globals have no types`);
  const sec = btf.type(map.btfValueTypeId);
  if (sec.kind !== 'datasec') fail(TypeError, 'ERR_INVALID_ARG_VALUE', `map '${map.name}' is not a data section`);
  const vars = new Map<string, Var>();
  for (const v of sec.vars) {
    const t = btf.type(v.type);
    if (t.kind === 'var') vars.set(t.name, { offset: v.offset, codec: codecFor(btf, t.type) });
  }
  const names = (): string => [...vars.keys()].join(', ') || 'none';
  const known = (name: string | symbol): Var | undefined => (typeof name === 'string' ? vars.get(name) : undefined);
  const read = (v: Var): unknown => v.codec.decode(map.readGlobal(v.offset, v.codec.size));
  return new Proxy(Object.create(null) as Globals, {
    get: (_, name) => {
      const v = known(name);
      return v ? read(v) : undefined;
    },
    set: (_, name, value) => {
      const v = known(name);
      if (!v) fail(TypeError, 'ERR_INVALID_ARG_VALUE', `no global '${String(name)}' in ${section} (it has: ${names()})`);
      // encode() throws before anything is written when the value does not fit
      map.writeGlobal(v.offset, v.codec.encode(value, `${section} ${String(name)}`));
      return true;
    },
    has: (_, name) => known(name) !== undefined,
    ownKeys: () => [...vars.keys()],
    getOwnPropertyDescriptor: (_, name) => {
      const v = known(name);
      return v ? { value: read(v), writable: true, enumerable: true, configurable: true } : undefined;
    },
    defineProperty: (_, name) => fail(TypeError, 'ERR_INVALID_ARG_VALUE', `no global '${String(name)}' in ${section} (it has: ${names()})`),
    deleteProperty: (_, name) => fail(TypeError, 'ERR_INVALID_ARG_VALUE', `globals cannot be deleted ('${String(name)}')`),
  });
}
