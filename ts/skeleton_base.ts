// What every generated skeleton class shares: the object's life cycle.
import type { AttachResult } from './link.js';
import type { BpfObject } from './object.js';

export class BpfSkeleton {
  readonly object: BpfObject;

  constructor(object: BpfObject) {
    this.object = object;
  }

  load(): this {
    this.object.load();
    return this;
  }

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

  close(): void {
    this.object.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
