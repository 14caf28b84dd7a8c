// What every generated skeleton class shares: the object's life cycle.
import type { AttachResult } from './link.js';
import type { BpfObject } from './object.js';

/**
 * The base class of what `libbpf-node gen skeleton` generates (as bpftool
 * gen skeleton does for C): one BpfObject (`object`) with typed maps,
 * programs and globals. Obtained with `new XxxSkeleton(opts)`. It owns its
 * object: close() closes it (idempotent; `using` calls it), after which its
 * maps and programs throw ERR_INVALID_STATE.
 * @example
 * using skel = new RunqlatSkeleton();
 * skel.load();
 * skel.attach();
 */
export class BpfSkeleton {
  readonly object: BpfObject;

  constructor(object: BpfObject) {
    this.object = object;
  }

  /** object.load() (bpf_object__load); returns this. */
  load(): this {
    this.object.load();
    return this;
  }

  /** object.loadAsync(): the load on a worker thread; resolves to this. */
  async loadAsync(): Promise<this> {
    await this.object.loadAsync();
    return this;
  }

  /**
   * Attaches every program whose section names its target: the links, with
   * `links` and `skipped` (what was not attached, and why) as obj.attach().
   */
  attach(): AttachResult {
    return this.object.attach();
  }

  /** object.close(): detaches every link and closes every fd. Idempotent. */
  close(): void {
    this.object.close();
  }

  /** close(), for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
