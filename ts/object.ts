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
import { viewOfBytes } from './internal/views.js';

/**
 * Options of `new BpfObject()` and BpfObject.fromBuffer(): the fields of
 * libbpf's `struct bpf_object_open_opts` this library passes on. Strings
 * must not contain NUL bytes (TypeError ERR_INVALID_ARG_VALUE); a wrong
 * type is a TypeError ERR_INVALID_ARG_TYPE.
 */
export interface BpfObjectOptions {
  /** Object name, bpf_object_open_opts.object_name (default: libbpf's, from the file name; 'mem_object' for an image in memory). */
  name?: string;
  /** btf_custom_path: a BTF file to use for CO-RE relocations instead of the kernel's /sys/kernel/btf/vmlinux. */
  btfCustomPath?: string;
  /** pin_root_path: the directory for maps declared with LIBBPF_PIN_BY_NAME (default /sys/fs/bpf). */
  pinRoot?: string;
  /**
   * kconfig: values for `extern` Kconfig symbols (`__kconfig`), as
   * 'CONFIG_X=y\n...' or `{ CONFIG_X: true, ... }` (true: y, false: n).
   */
  kconfig?: string | Readonly<Record<string, string | number | bigint | boolean>>;
  /**
   * kernel_log_level: the verifier log level for BTF and every program load
   * (1, 2, 4, or their sum; 0-31 accepted, default 0); failures always get a
   * log. See BpfProgram#verifierLog.
   */
  kernelLogLevel?: number;
}

/**
 * Where an object is in its life: 'opened' (after bpf_object__open_*;
 * settings can change), 'loading' (loadAsync() is running), 'loaded',
 * 'failed' (load() threw and cannot be retried: close it), 'closed'.
 */
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

/**
 * A compiled BPF ELF object (libbpf's `struct bpf_object`): its maps,
 * programs, BTF and global variables. Obtained with `new BpfObject(path)`
 * (bpf_object__open_file) or BpfObject.fromBuffer(image)
 * (bpf_object__open_mem); a generated skeleton makes one for you. Opening
 * reaches no kernel: set map and program options (`map.maxEntries`,
 * `prog.autoload`, `obj.rodata.x = ...`) first, then load() (bpf_object__load)
 * creates the maps and loads the programs, once.
 *
 * Ownership: the object owns its BpfMap and BpfProgram instances (the same
 * instance every time) and, through them, every BpfLink they attached and
 * every RingBuffer and PerfBuffer reading its maps. Each child holds its
 * object, so a child you still use keeps the object alive. close() detaches
 * all those links, closes those buffers and the maps' and programs' fds
 * (bpf_object__close); it is idempotent, and `using` calls it
 * (Symbol.dispose). After close(), the object and its maps and programs
 * throw a TypeError with code ERR_INVALID_STATE on use.
 *
 * Failed libbpf and kernel calls throw BpfError (VerifierError when the
 * verifier rejects a program), with `op` naming the libbpf function
 * (bpf_object__open_file, bpf_object__load, ...); misuse throws TypeError or
 * RangeError with a Node-style `code` before any syscall.
 *
 * @example
 * ```ts
 * import { BpfObject } from 'libbpf-node';
 * using obj = new BpfObject('minimal.bpf.o');
 * obj.rodata.my_pid = process.pid;   // a `const volatile` global, before load
 * obj.load();
 * const { links, skipped } = obj.attach();
 * const counts = obj.map<number, bigint>('counts');
 * console.log(counts.lookup(0));
 * ```
 */
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
   *
   * @param source A path to an ELF file, or the ELF image.
   * @throws BpfError (op bpf_object__open_file or bpf_object__open_mem) for a
   *   file that cannot be read or parsed (EISDIR for a directory,
   *   LIBBPF_ERRNO__FORMAT for malformed ELF or BTF).
   * @throws TypeError ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE for bad
   *   arguments or options.
   */
  constructor(source: string | Buffer | Uint8Array, opts: BpfObjectOptions = {}) {
    let src: string | Buffer;
    if (typeof source === 'string') src = checkString('path', source);
    else if (source instanceof Uint8Array) src = viewOfBytes(source); // ours, even for a Buffer: the checks read what native code reads
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
    // libbpf before 1.2 has no SEC("netfilter"): it leaves such programs
    // untyped, and the kernel wants both the type and BPF_NETFILTER.
    for (const p of this.#programs.values()) {
      if (p.section === 'netfilter' && p.type === 'unspec') {
        p.type = 'netfilter';
        p.expectedAttachType = 'netfilter';
      }
    }
  }

  /** Opens an ELF image held in memory (bpf_object__open_mem): the same as `new BpfObject(image, opts)`. */
  static fromBuffer(image: Buffer | Uint8Array, opts: BpfObjectOptions = {}): BpfObject {
    if (!(image instanceof Uint8Array)) invalidArgType('image', 'a Buffer or Uint8Array', image);
    return new BpfObject(image, opts);
  }

  /** The object's name (bpf_object__name): `opts.name`, else libbpf's, from the file name. */
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
  /** Where the object is in its life: 'opened', 'loading', 'loaded', 'failed' or 'closed'. */
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

  /** `globals('.rodata')`: `const volatile` configuration, to set before load() (read-only after it). */
  get rodata(): Globals { return this.globals('.rodata'); }
  /** `globals('.data')`: initialized globals, shared live with the programs after load(). */
  get data(): Globals { return this.globals('.data'); }
  /** `globals('.bss')`: zero-initialized globals, shared live with the programs after load(). */
  get bss(): Globals { return this.globals('.bss'); }
  /** True once load() succeeded (and until close()). */
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
    // A BpfError EINVAL as the kernel would give (op bpf_object__load), but
    // naming the setting instead of libbpf's "Retrying without BTF".
    const refuse = (problem: string): never => {
      throw new BpfError({ errno: 22, op: 'bpf_object__load', target: this.#name, log: `${problem}\n` },
        `bpf_object__load(${this.#name}) failed: EINVAL (invalid argument): ${problem}`);
    };
    for (const m of this.#maps.values()) {
      const missing = m.missingSetting();
      if (missing !== undefined) refuse(missing);
    }
    for (const p of this.#programs.values()) {
      if (p.autoload && p.type === 'unspec') {
        refuse(`program '${p.name}': section '${p.section}' names no program type; set prog.type before load()`);
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

  /**
   * Creates the maps and loads the programs into the kernel
   * (bpf_object__load). Runs once: a second call, or a call after a failed
   * load, is a TypeError ERR_INVALID_STATE.
   *
   * @throws TypeError ERR_INVALID_STATE, before the kernel sees anything,
   *   for a map whose key size, value size or max_entries is still 0 where
   *   its type needs one, or a program without a program type (the object
   *   stays 'opened': set them and retry).
   * @throws VerifierError when the verifier rejects a program (its whole log
   *   in `verifierLog`); BpfError (op bpf_object__load) for any other
   *   failure, with `unsupported` naming the kernel feature when a probe
   *   finds one missing.
   */
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

  /**
   * load() on a worker thread: the verifier can take a while on large
   * programs. State is 'loading' meanwhile; rejects as load() throws, and
   * with ERR_INVALID_STATE if close() ran while it loaded.
   */
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

  /**
   * The program called `name` (the C function's name, bpf_object__find_program_by_name).
   * @throws TypeError ERR_INVALID_ARG_VALUE for an unknown name (the message lists the known ones).
   */
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
        if (p.type === 'struct_ops') {
          skipped.push({ program: p, reason: `SEC(${JSON.stringify(p.section)}) runs as a member of its struct_ops map, which obj.attach() registers` });
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
      // struct_ops maps are registered as programs are attached: a
      // tcp_congestion_ops is usable once obj.attach() returns.
      for (const m of this.#maps.values()) {
        if (m.type === 'struct_ops' && m.autocreate !== false) links.push(m.attachStructOps());
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

  /** close(), for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
