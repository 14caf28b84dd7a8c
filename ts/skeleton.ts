// `libbpf-node gen skeleton`: TypeScript for one BPF object, the way
// `bpftool gen skeleton` writes C and libbpf-cargo writes Rust: a class
// that opens the object (embedded, or by path) with typed maps, programs and
// global variables, and the object's types as interfaces.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Btf, type BtfMember, type BtfType } from './btf.js';
import { fail } from './internal/errors.js';
import type { BpfMap } from './map.js';
import { BpfObject } from './object.js';

/** Options of generateSkeleton(), and of `libbpf-node gen skeleton` (--name, --embed, --import, --object-path, --module, --types, --event). */
export interface SkeletonOptions {
  /** The class name (default: from the file name, e.g. RunqlatSkeleton). */
  name?: string;
  /** Put the object in the skeleton (base64) instead of opening it by path. */
  embed?: boolean;
  /** The module to import the library from (default 'libbpf-node'). */
  importFrom?: string;
  /**
   * Where the object is, relative to the compiled skeleton's .js file
   * (default: next to it). Not used with `embed`.
   */
  objectPath?: string;
  /**
   * The module kind of the project the skeleton is compiled in: 'cjs' finds
   * the object through `__dirname`, 'esm' through `import.meta.url`, which
   * is all an ES module has (default 'cjs'; the CLI looks at the nearest
   * package.json's "type" and the output's extension).
   */
  module?: 'esm' | 'cjs';
  /**
   * A types file (`clang -g -target bpf -c types.c` of the header the
   * program shares with user space): its named structs are exported as
   * interfaces, and `events` may name its types. Embedded in the skeleton
   * (its BTF is small), so nothing more to ship.
   */
  types?: string;
  /**
   * Which ring or perf buffer map carries which event type, e.g.
   * { events: 'struct event' } (looked up in `types`, then in the object's
   * BTF): the skeleton gets stream<Map>() returning a RingBuffer or
   * PerfBuffer typed by it.
   */
  events?: Readonly<Record<string, string>>;
}

// An object path as a relative URL reference: './x.bpf.o', '../bpf/x.bpf.o'.
const urlRef = (p: string): string => {
  const u = p.split(path.sep).map(encodeURIComponent).join('/');
  return path.isAbsolute(p) || u.startsWith('.') ? (path.isAbsolute(p) ? `file://${u}` : u) : `./${u}`;
};

const pascal = (s: string): string =>
  s.replace(/^[^A-Za-z_]+/, '').split(/[^A-Za-z0-9]+/).filter(Boolean).map((w) => w[0]!.toUpperCase() + w.slice(1)).join('') || 'X';
const ident = (s: string): string => (/^[A-Za-z_$][\w$]*$/.test(s) ? s : JSON.stringify(s));

// Names a C type must not take in the skeleton: what it imports, what it
// declares itself, and the globals its types use (struct buffer would
// otherwise shadow Buffer).
const RESERVED = [
  'BpfObject', 'BpfSkeleton', 'BpfMap', 'BpfObjectOptions', 'BpfProgram', 'PerCpu', 'path', 'IMAGE',
  'Buffer', 'Array', 'Object', 'Map', 'Set', 'String', 'Number', 'Boolean', 'BigInt', 'Symbol', 'Error', 'Record',
  'Int8Array', 'Uint8Array', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array', 'BigInt64Array',
  'BigUint64Array', 'Float32Array', 'Float64Array',
];

class Types {
  readonly decls = new Map<number, string>(); // type id -> interface source
  readonly names = new Map<number, string>();
  readonly #used: Set<string>;

  /** `used`: names taken, shared with the Types of another BTF in the same skeleton. */
  constructor(readonly btf: Btf, used: Set<string>) {
    this.#used = used;
  }

  #name(t: BtfType): string {
    let n = this.names.get(t.id);
    if (n) return n;
    const base = pascal(t.name);
    n = base;
    for (let i = 2; this.#used.has(n); i++) n = `${base}${i}`;
    this.#used.add(n);
    this.names.set(t.id, n);
    return n;
  }

  #members(t: BtfType & { members: BtfMember[] }, indent: string): string[] {
    const out: string[] = [];
    for (const m of t.members) {
      const r = this.btf.resolve(m.type);
      if (!m.name && (r.kind === 'struct' || r.kind === 'union')) out.push(...this.#members(r, indent));
      else if (m.name) out.push(`${indent}${ident(m.name)}: ${m.bitfieldSize > 32 ? 'bigint' : m.bitfieldSize ? 'number' : this.ts(m.type, indent)};`);
    }
    return out;
  }

  /** The TypeScript type a codec decodes `id` to. */
  ts(id: number, indent = '  '): string {
    const t = this.btf.resolve(id);
    switch (t.kind) {
      case 'int': return t.bool ? 'boolean' : t.size > 4 ? 'bigint' : 'number';
      case 'enum': return 'number';
      case 'enum64': case 'ptr': return 'bigint';
      case 'float': return 'number';
      case 'array': {
        const e = this.btf.resolve(t.type);
        if (e.kind === 'int' && e.size === 1 && (e.char || e.name === 'char')) return 'string';
        if (e.kind === 'float') return e.size === 4 ? 'Float32Array' : 'Float64Array';
        if (e.kind === 'int' && !e.bool) {
          const typed = { 1: 'Int8Array', 2: 'Int16Array', 4: 'Int32Array', 8: 'BigInt64Array' }[e.size];
          if (typed) return e.signed ? typed : typed.replace('Int', 'Uint');
        }
        return `${this.ts(t.type, indent)}[]`;
      }
      case 'struct':
      case 'union': {
        if (!t.name) return `{\n${this.#members(t, `${indent}  `).join('\n')}\n${indent}}`;
        const name = this.#name(t);
        if (!this.decls.has(t.id)) {
          this.decls.set(t.id, ''); // recursion guard
          this.decls.set(t.id, `/** ${t.kind} ${t.name} (${t.size} bytes) */\nexport interface ${name} {\n${this.#members(t, '  ').join('\n')}\n}\n`);
        }
        return name;
      }
      default: return 'unknown';
    }
  }
}

/** The TypeScript source of a skeleton for `objectFile`. */
export function generateSkeleton(objectFile: string, opts: SkeletonOptions = {}): string {
  const base = path.basename(objectFile).replace(/\.bpf\.o$|\.o$/, '');
  const cls = opts.name ?? `${pascal(base)}Skeleton`;
  const from = opts.importFrom ?? 'libbpf-node';
  const o = new BpfObject(objectFile);
  try {
    const btf = o.btf;
    // A data section's map is named '<object prefix>.bss' and the like.
    const sectionOf = (m: BpfMap): string => m.name.slice(m.name.indexOf('.'));
    const sectionIface = (section: string): string => `${cls}${pascal(section)}`;
    const dataMaps = [...o.maps.values()].filter((m) => m.internal);
    const used = new Set([...RESERVED, cls, ...dataMaps.map((m) => sectionIface(sectionOf(m)))]);
    const types = btf ? new Types(btf, used) : undefined;
    // The types file: its BTF, and the named structs its globals point to.
    const typesImage = opts.types === undefined ? undefined : readFileSync(opts.types);
    const outside = typesImage ? new Types(Btf.parse(typesImage), used) : undefined;
    if (outside) {
      for (const t of outside.btf.types()) {
        if (t.kind !== 'var') continue;
        let r = outside.btf.resolve(t.type);
        if (r.kind === 'ptr') r = outside.btf.resolve(r.type);
        if ((r.kind === 'struct' || r.kind === 'union') && r.name) outside.ts(r.id);
      }
    }
    const maps = [...o.maps.values()].filter((m) => !m.internal);
    const progs = [...o.programs.values()];
    // Each map's K, V: decoded from BTF where the runtime decodes it, else raw.
    const mapTypes = new Map(maps.map((m) => {
      const raw = m.perCpu ? 'PerCpu<Buffer>' : 'Buffer';
      if (!types || !m.decoded) return [m.name, `Buffer, ${raw}`];
      const k = m.keySize === 0 ? 'null' : m.btfKeyTypeId ? types.ts(m.btfKeyTypeId) : 'Buffer';
      const v = types.ts(m.btfValueTypeId);
      return [m.name, `${k}, ${m.perCpu ? `PerCpu<${v}>` : v}`];
    }));
    // Global variables per data section; a pointer variable names a type to
    // export (struct event *unused_event), as libbpf-tools do.
    const sections: { section: string; iface: string; vars: string[] }[] = [];
    for (const m of dataMaps) {
      if (!types || !btf || !m.btfValueTypeId) continue;
      const sec = btf.type(m.btfValueTypeId);
      if (sec.kind !== 'datasec') continue;
      const section = sectionOf(m);
      if (section === '.kconfig' || section === '.ksyms') continue;
      const vars: string[] = [];
      for (const v of sec.vars) {
        const t = btf.type(v.type);
        if (t.kind !== 'var') continue;
        vars.push(`  ${ident(t.name)}: ${types.ts(t.type)};`);
        const r = btf.resolve(t.type);
        if (r.kind === 'ptr') {
          const target = btf.resolve(r.type);
          if ((target.kind === 'struct' || target.kind === 'union') && target.name) types.ts(target.id);
        }
      }
      sections.push({ section, iface: sectionIface(section), vars });
    }
    // Event maps: the TypeScript type of their records, and where the type is.
    const events: { map: BpfMap; kind: 'RingBuffer' | 'PerfBuffer'; type: string; ts: string; fromTypes: boolean }[] = [];
    for (const [mapName, typeName] of Object.entries(opts.events ?? {})) {
      const m = o.maps.get(mapName);
      if (!m || m.internal) fail(TypeError, 'ERR_INVALID_ARG_VALUE', `--event ${mapName}: no map named '${mapName}' (there are: ${maps.map((x) => x.name).join(', ')})`);
      if (m.type !== 'ringbuf' && m.type !== 'perf_event_array') fail(TypeError, 'ERR_INVALID_ARG_VALUE', `--event ${mapName}: a ${m.type} map carries no event stream (ringbuf or perf_event_array)`);
      const inTypes = outside?.btf.find(typeName);
      const inObject = inTypes ? undefined : btf?.find(typeName);
      if (!inTypes && !inObject) {
        fail(TypeError, 'ERR_INVALID_ARG_VALUE', `--event ${mapName}: no type named '${typeName}' in ${outside ? `${path.basename(opts.types!)} or ` : ''}the object's BTF${outside ? '' : ' (a type only in a header needs --types)'}`);
      }
      const ts = inTypes ? outside!.ts(inTypes.id) : types!.ts(inObject!.id);
      events.push({ map: m, kind: m.type === 'ringbuf' ? 'RingBuffer' : 'PerfBuffer', type: typeName, ts, fromTypes: inTypes !== undefined });
    }
    const typesFile = opts.types ?? '';
    const image = opts.embed ? readFileSync(objectFile).toString('base64') : undefined;
    const ref = opts.objectPath ?? path.basename(objectFile);
    const lines: string[] = [];
    lines.push(`// Generated by \`libbpf-node gen skeleton\` from ${path.basename(objectFile)}: do not edit.`);
    lines.push(`// Regenerate it when the object changes (a test compares them).`);
    const esm = opts.module === 'esm';
    if (opts.module !== undefined && opts.module !== 'esm' && opts.module !== 'cjs') {
      fail(TypeError, 'ERR_INVALID_ARG_VALUE', `module must be 'esm' or 'cjs', got ${JSON.stringify(opts.module)}`);
    }
    if (!image) lines.push(esm ? `import { fileURLToPath } from 'node:url';` : `import * as path from 'node:path';`);
    const streamKinds = new Set(events.map((e) => e.kind));
    const imports = ['BpfObject', 'BpfSkeleton', maps.length ? 'type BpfMap' : '', 'type BpfObjectOptions',
      progs.length ? 'type BpfProgram' : '', maps.some((m) => m.perCpu) ? 'type PerCpu' : '',
      events.some((e) => e.fromTypes) ? 'Btf' : '',
      streamKinds.has('RingBuffer') ? 'RingBuffer, type RingBufferOptions' : '',
      streamKinds.has('PerfBuffer') ? 'PerfBuffer, type PerfBufferOptions' : ''].filter(Boolean);
    lines.push(`import { ${imports.join(', ')} } from ${JSON.stringify(from)};`);
    lines.push('');
    if (types) for (const d of types.decls.values()) lines.push(d);
    if (outside) {
      lines.push(`// Types of ${path.basename(opts.types!)}.`);
      for (const d of outside.decls.values()) lines.push(d);
    }
    if (typesImage && events.some((e) => e.fromTypes)) {
      lines.push(`// ${path.basename(opts.types!)}, whose BTF types the event streams.`);
      lines.push(`const TYPES = ${JSON.stringify(typesImage.toString('base64'))};`);
      lines.push(`let typesBtf: Btf | undefined;
`);
    }
    for (const s of sections) lines.push(`/** Global variables in ${s.section}. */\nexport interface ${s.iface} {\n${s.vars.join('\n')}\n}\n`);
    if (image) lines.push(`const IMAGE = ${JSON.stringify(image)};\n`);
    lines.push(`/** ${path.basename(objectFile)}: its maps, programs and globals, typed. */`);
    lines.push(`export class ${cls} extends BpfSkeleton {`);
    const block = (entries: string[]): string => (entries.length ? `{\n${entries.join('\n')}\n  }` : 'Record<string, never>');
    lines.push(`  readonly maps: ${block(maps.map((m) => `    readonly ${ident(m.name)}: BpfMap<${mapTypes.get(m.name)!}>;`))};`);
    lines.push(`  readonly programs: ${block(progs.map((p) => `    readonly ${ident(p.name)}: BpfProgram;`))};`);
    lines.push('');
    lines.push(`  constructor(opts: BpfObjectOptions = {}) {`);
    lines.push(image
      ? `    super(BpfObject.fromBuffer(Buffer.from(IMAGE, 'base64'), { name: ${JSON.stringify(o.name)}, ...opts }));`
      : esm
        // A URL relative to this module: './x.bpf.o' beside the compiled .js.
        ? `    super(new BpfObject(fileURLToPath(new URL(${JSON.stringify(urlRef(ref))}, import.meta.url)), opts));`
        : `    super(new BpfObject(path.join(__dirname, ${JSON.stringify(ref)}), opts));`);
    lines.push(`    this.maps = {\n${maps.map((m) => `      ${ident(m.name)}: this.object.map<${mapTypes.get(m.name)!}>(${JSON.stringify(m.name)}),`).join('\n')}\n    };`);
    lines.push(`    this.programs = {\n${progs.map((p) => `      ${ident(p.name)}: this.object.program(${JSON.stringify(p.name)}),`).join('\n')}\n    };`);
    lines.push(`  }`);
    for (const e of events) {
      const opts = e.kind === 'RingBuffer' ? 'RingBufferOptions' : 'PerfBufferOptions';
      const btfArg = e.fromTypes ? ', btf: (typesBtf ??= Btf.parse(Buffer.from(TYPES, \'base64\')))' : '';
      lines.push('');
      lines.push(`  /** Records of map ${e.map.name}, decoded as ${e.type}${e.fromTypes ? ` from ${path.basename(typesFile)}` : ''}; after load(). */`);
      lines.push(`  stream${pascal(e.map.name)}(opts: Omit<${opts}<${e.ts}>, 'type' | 'btf' | 'layout' | 'decode'> = {}): ${e.kind}<${e.ts}> {`);
      lines.push(`    return new ${e.kind}<${e.ts}>(this.maps.${ident(e.map.name)}, { ...opts, type: ${JSON.stringify(e.type)}${btfArg} });`);
      lines.push(`  }`);
    }
    for (const s of sections) {
      const getter = s.section === '.rodata' ? 'rodata' : s.section === '.data' ? 'data' : s.section === '.bss' ? 'bss' : undefined;
      lines.push('');
      lines.push(`  /** ${s.section}${s.section.startsWith('.rodata') ? ': set before load()' : ': live after load()'} */`);
      lines.push(`  get ${getter ?? `globals${pascal(s.section)}`}(): ${s.iface} {`);
      lines.push(`    return this.object.globals(${JSON.stringify(s.section)}) as unknown as ${s.iface};`);
      lines.push(`  }`);
    }
    lines.push(`}`);
    return `${lines.join('\n')}\n`;
  } finally {
    o.close();
  }
}
