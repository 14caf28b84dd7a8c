// BpfObject: a compiled BPF ELF object (bpf_object), opened, configured,
// loaded, and the owner of its maps, programs and their links.
import { statSync } from 'node:fs';
import { Btf } from './btf.js';
import { BpfError } from './errors.js';
import { globalsOf, type Globals } from './globals.js';
import { addon, type NativeObject, type NativeObjectOptions } from './internal/addon.js';
import { explainLoad } from './internal/unsupported.js';
import { refuseMalformed } from './internal/objcheck.js';
import { checkInt, checkString, invalidArgType, invalidState, unknownName } from './internal/errors.js';
import { attachResult, type AttachResult, type BpfLink, type SkippedProgram } from './link.js';
import { BpfMap } from './map.js';
import { BpfProgram, attachHints } from './program.js';

export interface BpfObjectOptions {
  /** Object name (default: from the file name). */
  name?: string;
  /** BTF to use for CO-RE relocations instead of the kernel's. */
  btfCustomPath?: string;
  /** Directory for maps with LIBBPF_PIN_BY_NAME (default /sys/fs/bpf). */
  pinRoot?: string;
  /** Values for `extern` Kconfig symbols: 'CONFIG_X=y\n...' or { CONFIG_X: true, ... }. */
  kconfig?: string | Readonly<Record<string, string | number | bigint | boolean>>;
  /** Kernel log level for BTF and every program load (1, 2, 4); failures always get a log. */
  kernelLogLevel?: number;
}

/** Where an object is in its life. */
export type BpfObjectState = 'opened' | 'loading' | 'loaded' | 'failed' | 'closed';

function kconfigText(k: NonNullable<BpfObjectOptions['kconfig']>): string {
  if (typeof k === 'string') return k;
  if (k === null || typeof k !== 'object') return invalidArgType('opts.kconfig', 'a string or an object', k);
  return Object.entries(k)
    .map(([name, v]) => `${name}=${v === true ? 'y' : v === false ? 'n' : String(v)}`)
    .join('\n');
}

function nativeOptions(opts: BpfObjectOptions): NativeObjectOptions {
  if (opts === null || typeof opts !== 'object') invalidArgType('opts', 'an object', opts);
  const o: NativeObjectOptions = {};
  if (opts.name !== undefined) o.name = checkString('opts.name', opts.name);
  if (opts.btfCustomPath !== undefined) o.btfCustomPath = checkString('opts.btfCustomPath', opts.btfCustomPath);
  if (opts.pinRoot !== undefined) o.pinRoot = checkString('opts.pinRoot', opts.pinRoot);
  if (opts.kconfig !== undefined) o.kconfig = kconfigText(opts.kconfig);
  if (opts.kernelLogLevel !== undefined) o.kernelLogLevel = checkInt('opts.kernelLogLevel', opts.kernelLogLevel, 0, 31);
  return o;
}

// libbpf 1.1 and 1.7 leak the fd of a directory given as an object path
// (and report an "invalid file descriptor"): refuse it first.
function notADirectory(path: string): void {
  let dir = false;
  try {
    dir = statSync(path).isDirectory();
  } catch {
    return; // libbpf says what is wrong with a path that cannot be read
  }
  if (dir) throw new BpfError({ errno: 21, op: 'bpf_object__open_file', target: path, log: '' }, `bpf_object__open_file(${path}) failed: EISDIR (illegal operation on a directory): a BPF object is an ELF file, not a directory`);
}

export class BpfObject {
  #native: NativeObject;
  #state: BpfObjectState = 'opened';
  #name: string;
  #maps: Map<string, BpfMap>;
  // Internal maps by the name the user expects: libbpf names them after the
  // object name cut to fit 15 bytes ('bootstra.rodata' for 'bootstrap').
  #mapAliases = new Map<string, BpfMap>();
  #programs: Map<string, BpfProgram>;
  #btf: Btf | null | undefined;
  #globals = new Map<string, Globals>();

  /**
   * Opens an object file (bpf_object__open_file) or an in-memory image
   * (bpf_object__open_mem). Nothing reaches the kernel before load().
   */
  constructor(source: string | Buffer | Uint8Array, opts: BpfObjectOptions = {}) {
    let src: string | Buffer;
    if (typeof source === 'string') src = checkString('path', source);
    else if (source instanceof Uint8Array) src = Buffer.from(source.buffer, source.byteOffset, source.byteLength);
    else src = invalidArgType('path', 'a path or a Buffer', source);
    if (typeof src === 'string') notADirectory(src);
    // libbpf names an image in memory by its address ('5616...-ae8'), which
    // ends up in its maps' names: a name of our own unless one is given.
    const o = nativeOptions(opts);
    refuseMalformed(src, o); // what would crash libbpf 1.1 never reaches it (issue 11)
    this.#native = new addon.NativeObject(src, { name: typeof src === 'string' ? undefined : 'mem_object', ...o });
    this.#name = this.#native.name();
    this.#maps = new Map(this.#native.maps().map((m) => {
      const map = new BpfMap(m, this);
      return [map.name, map];
    }));
    for (const m of this.#maps.values()) {
      const dot = m.name.indexOf('.');
      if (!m.internal || dot < 0) continue;
      const alias = this.#name + m.name.slice(dot);
      if (alias !== m.name && !this.#maps.has(alias)) this.#mapAliases.set(alias, m);
    }
    this.#programs = new Map(this.#native.programs().map((p) => {
      const prog = new BpfProgram(p, this);
      return [prog.name, prog];
    }));
  }

  /** Opens an ELF image held in memory (bpf_object__open_mem). */
  static fromBuffer(image: Buffer | Uint8Array, opts: BpfObjectOptions = {}): BpfObject {
    if (!(image instanceof Uint8Array)) invalidArgType('image', 'a Buffer or Uint8Array', image);
    return new BpfObject(image, opts);
  }

  get name(): string { return this.#name; }

  /** The object's BTF (as libbpf fixed it up at open), or null without BTF. */
  get btf(): Btf | null {
    this.#open('read BTF');
    if (this.#btf === undefined) {
      const raw = this.#native.btf();
      this.#btf = raw ? Btf.parse(raw) : null;
    }
    return this.#btf;
  }
  get state(): BpfObjectState { return this.#state; }

  /**
   * The global variables of a data section ('.rodata', '.data', '.bss',
   * '.data.custom', ...), typed from BTF: set `const volatile` configuration
   * before load(); read and write .data/.bss live after it.
   */
  globals(section: string): Globals {
    this.#open('read globals');
    let g = this.#globals.get(section);
    if (!g) {
      const map = [...this.#maps.values()].find((m) => m.internal && m.name.endsWith(section));
      if (!map) {
        const sections = [...this.#maps.values()].filter((m) => m.internal).map((m) => m.name.slice(m.name.indexOf('.')));
        unknownName(`data section in BpfObject '${this.#name}'`, section, sections);
      }
      g = globalsOf(map, section);
      this.#globals.set(section, g);
    }
    return g;
  }

  get rodata(): Globals { return this.globals('.rodata'); }
  get data(): Globals { return this.globals('.data'); }
  get bss(): Globals { return this.globals('.bss'); }
  get loaded(): boolean { return this.#state === 'loaded'; }

  #open(what: string): void {
    if (this.#state === 'closed') invalidState(`cannot ${what}: BpfObject '${this.#name}' is closed`);
  }

  #beginLoad(): void {
    this.#open('load');
    if (this.#state !== 'opened') invalidState(`BpfObject '${this.#name}' is ${this.#state}; load() runs once`);
  }

  // A failed load says which kernel feature was missing, where a probe
  // finds one (a program type, an attach hook, a helper, a map type).
  #explain(e: unknown): unknown {
    if (this.#state === 'closed') return e;
    try {
      const programs = new Map([...this.programs].map(([n, p]) => [n, { section: p.section, type: p.type }]));
      const maps = new Map([...this.maps].map(([n, m]) => [n, { type: m.type }]));
      return explainLoad(e, { programs, maps });
    } catch {
      return e;
    }
  }

  // Settings the ELF left for the loader and nobody set: refused before the
  // kernel sees them (where it would answer a bare EINVAL), naming the map
  // or program and the setter. The object stays 'opened', to set and retry.
  #preflight(): void {
    for (const m of this.#maps.values()) {
      const missing = m.missingSetting();
      if (missing !== undefined) invalidState(`BpfObject '${this.#name}': ${missing}`);
    }
    for (const p of this.#programs.values()) {
      if (p.autoload && p.type === 'unspec') {
        invalidState(`BpfObject '${this.#name}': program '${p.name}': section '${p.section}' names no program type; set prog.type before load()`);
      }
    }
  }

  // A program that uses a map left uncreated (autocreate = false) fails in
  // the verifier with "fd -1 is not pointing to valid bpf_map": say which.
  #explainUncreated(e: unknown): unknown {
    if (!(e instanceof BpfError)) return e;
    const log = `${e.log}\n${(e as { verifierLog?: string }).verifierLog ?? ''}`;
    if (!/fd -1 is not pointing to valid bpf_map|wasn't created|was not created/.test(log)) return e;
    const off = [...this.#maps.values()].filter((m) => !m.autocreate).map((m) => `'${m.name}'`);
    if (off.length === 0) return e;
    e.message += `\n(a program uses a map that load() did not create: ${off.join(', ')} ${off.length > 1 ? 'have' : 'has'} autocreate = false)`;
    return e;
  }

  /** Creates the maps and loads the programs into the kernel (bpf_object__load). */
  load(): this {
    this.#beginLoad();
    this.#preflight();
    try {
      this.#native.load();
      this.#state = 'loaded';
    } catch (e) {
      this.#state = 'failed';
      throw this.#explain(this.#explainUncreated(e));
    }
    return this;
  }

  /** load() on a worker thread: the verifier can take a while on large programs. */
  async loadAsync(): Promise<this> {
    this.#beginLoad();
    this.#preflight();
    this.#state = 'loading';
    try {
      await this.#native.loadAsync();
    } catch (e) {
      if (this.#state === 'loading') this.#state = 'failed';
      throw this.#explain(this.#explainUncreated(e));
    }
    // close() may have run while the worker loaded
    if ((this.#state as BpfObjectState) === 'closed') {
      invalidState(`BpfObject '${this.#name}' was closed while it loaded`);
    }
    this.#state = 'loaded';
    return this;
  }

  /** Every map, by name (including the .data/.bss/.rodata maps of globals). */
  get maps(): ReadonlyMap<string, BpfMap> {
    this.#open('list maps');
    return this.#maps;
  }

  /** Every program, by name (the C function's name). */
  get programs(): ReadonlyMap<string, BpfProgram> {
    this.#open('list programs');
    return this.#programs;
  }

  /**
   * The map called `name`. Its key and value types can be given when known:
   * `obj.map<number, bigint>('counts')` for `__type(key, u32)`,
   * `__type(value, u64)` (a generated skeleton types every map).
   * Internal maps are found by libbpf's name ('bootstra.rodata') and by the
   * whole object name ('bootstrap.rodata').
   */
  map<K = unknown, V = unknown>(name: string): BpfMap<K, V> {
    this.#open('look up a map');
    const m = this.#maps.get(checkString('name', name)) ?? this.#mapAliases.get(name);
    if (!m) unknownName(`map in BpfObject '${this.#name}'`, name, [...this.#maps.keys(), ...this.#mapAliases.keys()]);
    return m as BpfMap<K, V>;
  }

  program(name: string): BpfProgram {
    this.#open('look up a program');
    const p = this.#programs.get(checkString('name', name));
    if (!p) unknownName(`program in BpfObject '${this.#name}'`, name, this.#programs.keys());
    return p;
  }

  /**
   * Attaches every loaded program whose section names its attach point
   * (SEC("tracepoint/..."), SEC("raw_tp/..."), SEC("uprobe/bin:func"), ...),
   * like a skeleton's attach(), and reports the programs it did not attach
   * and why: a section that needs a target (SEC("tc"), SEC("xdp"),
   * SEC("socket"), SEC("kprobe") without a function: the reason names the
   * method to call), or autoload or autoattach off. A program whose hook
   * this kernel lacks is an error (its BpfError names the feature in
   * `unsupported`): set `autoload = false` on alternatives you do not need.
   *
   * The result is the array of links, which also carries `links` (the same
   * links) and `skipped`: both `obj.attach().forEach(...)` and
   * `const { links, skipped } = obj.attach()` work. On any other failure,
   * the links made so far are detached before the error is thrown.
   */
  attach(): AttachResult {
    this.#open('attach');
    if (this.#state !== 'loaded') invalidState(`BpfObject '${this.#name}' is not loaded`);
    const links: BpfLink[] = [];
    const skipped: SkippedProgram[] = [];
    try {
      for (const p of this.#programs.values()) {
        const off = p.autoAttachSkip();
        if (off !== undefined) {
          skipped.push({ program: p, reason: off });
          continue;
        }
        try {
          links.push(p.attach());
        } catch (e) {
          // A section that needs a target is skipped; anything else (a hook
          // this kernel lacks included: the program was meant to run) throws.
          const hint = e instanceof BpfError ? attachHints.get(e) : undefined;
          if (hint !== undefined) skipped.push({ program: p, reason: hint, error: e as BpfError });
          else throw e;
        }
      }
    } catch (e) {
      for (const l of links) l.detach();
      throw e;
    }
    return attachResult(links, skipped);
  }

  /** Detaches every link, then closes every map and program fd. Idempotent. */
  close(): void {
    if (this.#state === 'closed') return;
    for (const p of this.#programs.values()) p.detachAll();
    for (const m of this.#maps.values()) m.closeDependents();
    this.#state = 'closed';
    this.#native.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
