// BpfLink: one attachment of a program. Attached links are held in a
// registry until detach(), so garbage collection never detaches a program
// behind the user's back; closing the program's object detaches them.
import { addon, type NativeLink, type NativeLinkInfo } from './internal/addon.js';
import { checkInt, checkString, invalidState } from './internal/errors.js';
import type { BpfError } from './errors.js';
import type { BpfProgram } from './program.js';
import { linkInfo, native as introspect, type LinkInfo } from './introspect.js';

const LINK_TYPES = [
  'unspec', 'raw_tracepoint', 'tracing', 'cgroup', 'iter', 'netns', 'xdp', 'perf_event',
  'kprobe_multi', 'struct_ops', 'netfilter', 'tcx', 'uprobe_multi', 'netkit', 'sockmap',
] as const;
/**
 * The kernel's link types, and the attachments that are no kernel link:
 * 'socket_filter', 'xdp_netlink', 'tc' (a classic tc filter), 'prog_attach',
 * 'usdt' (libbpf's set of uprobes, one per probe site) and
 * 'perf_event_legacy' (a perf event the program was attached to by ioctl,
 * on kernels before 5.15). The kernel's are `enum bpf_link_type`
 * (BPF_LINK_TYPE_*) by name: 'raw_tracepoint', 'tracing', 'cgroup', 'iter',
 * 'netns', 'xdp', 'perf_event', 'kprobe_multi', 'tcx', ...
 * @useDeclaredType
 */
export type LinkType = (typeof LINK_TYPES)[number] | 'socket_filter' | 'perf_event_legacy' | 'xdp_netlink' | 'tc' | 'prog_attach' | 'usdt';

const attached = new Set<BpfLink>();

/** A program that obj.attach() (or a skeleton's attach()) did not attach, and why. */
export interface SkippedProgram {
  /** The program left unattached. */
  readonly program: BpfProgram;
  /**
   * Why: the method to call for a section that needs a target ("SEC(\"tc\")
   * needs an interface and a direction: use prog.attachTc(...)"), autoload
   * or autoattach off, or the hook this kernel lacks.
   */
  readonly reason: string;
  /** The BpfError behind the reason (EOPNOTSUPP, or one naming the missing feature), where there was one. */
  readonly error?: BpfError;
}

/**
 * What obj.attach() returns: the links made (it is an array of them, as it
 * always was), with `links` (the same links, as a plain array) and `skipped`
 * besides, for `const { links, skipped } = obj.attach()`.
 */
export interface AttachResult extends Array<BpfLink> {
  /** The same links, as a plain array (not enumerable). */
  readonly links: BpfLink[];
  /** The programs left unattached, and why (frozen; not enumerable). */
  readonly skipped: readonly SkippedProgram[];
}

/** @internal */
export function attachResult(links: BpfLink[], skipped: SkippedProgram[]): AttachResult {
  const result = [...links];
  // Not enumerable: the result still compares, prints and spreads as the
  // plain array of links it used to be.
  Object.defineProperties(result, {
    links: { value: links, enumerable: false },
    skipped: { value: Object.freeze(skipped), enumerable: false },
  });
  return result as AttachResult;
}

/**
 * One attachment of a program (libbpf's `struct bpf_link`, or an
 * attachment that is no kernel link: a socket filter, a netlink XDP
 * program, a classic tc filter, a prog_attach, a USDT set of uprobes; see
 * `type`). Obtained from the attach methods of BpfProgram
 * (attachKprobe, attachTracepoint, attachXdp, attachTc, ...), from
 * BpfObject#attach, or with BpfLink.fromPin() (bpf_link__open).
 *
 * Ownership: an attached link is held by a registry and by its program, so
 * garbage collection never detaches it; it stays attached until detach()
 * (bpf_link__destroy), its program's close(), or its object's close(). A
 * netlink XDP attachment and a classic tc filter, which would outlive the
 * process, are also removed when the process exits. A pinned link stays
 * attached through its pin. detach() is idempotent; close() and `using`
 * (Symbol.dispose) call it. After detach(), pin(), unpin(), update() and
 * the metadata getters throw TypeError ERR_INVALID_STATE ('BpfLink is
 * detached'), unless they were read before.
 *
 * @example
 * ```ts
 * const prog = obj.program('count_opens');
 * {
 *   using link = prog.attachKprobe('do_sys_openat2');
 *   console.log(link.type, link.id); // 'perf_event' ('perf_event_legacy' before Linux 5.15), the link id
 * } // detached here
 * ```
 */
export class BpfLink {
  #native: NativeLink | undefined;
  #onDetach: ((link: BpfLink) => void) | undefined;
  #release: { detach(): void } | undefined;
  #info: NativeLinkInfo | undefined;

  /**
   * @internal Links are made by the attach methods of BpfProgram and by
   * BpfLink.fromPin(). `release`, where given, undoes the attachment
   * instead of the native link's detach() (and does more: a classic tc
   * filter's removes the clsact qdisc it made).
   */
  constructor(native: NativeLink, onDetach?: (link: BpfLink) => void, release?: { detach(): void }) {
    this.#native = native;
    this.#onDetach = onDetach;
    this.#release = release;
    attached.add(this);
  }

  /** Opens a link pinned in bpffs (bpf_link__open); detach() releases this handle only. */
  static fromPin(path: string): BpfLink {
    return new BpfLink(addon.NativeLink.fromPin(checkString('path', path)));
  }

  /**
   * Opens a kernel link by its id (bpf_link_get_fd_by_id): any loader's
   * link. The BpfLink holds an fd of it: detach()/close() releases that fd
   * only (the link stays while its owner holds it); forceDetach() is what
   * detaches it for everyone.
   */
  static fromId(id: number): BpfLink {
    return new BpfLink(introspect.linkFromId(checkInt('id', id, 1, 0xffff_ffff), false) as NativeLink);
  }

  /**
   * Every link in the kernel (bpf_link_get_next_id), opened one at a time
   * as the iteration reaches it; a link gone in between is skipped. Each
   * BpfLink is the caller's to close() (or `using`); one left open keeps an
   * fd until the GC finds it.
   */
  static async *list(): AsyncGenerator<BpfLink, void, undefined> {
    for (let id = introspect.nextId('link', 0); id !== 0; id = introspect.nextId('link', id)) {
      const native = introspect.linkFromId(id, true) as NativeLink | null;
      if (native) yield new BpfLink(native);
    }
  }

  #live(): NativeLink {
    if (!this.#native) invalidState('BpfLink is detached');
    return this.#native;
  }

  #meta(): NativeLinkInfo {
    this.#info ??= this.#live().info();
    return this.#info;
  }

  /** False once detached. */
  get attached(): boolean { return this.#native !== undefined; }
  /**
   * The link's fd; -1 where there is none of the link's own: a socket
   * filter, a netlink XDP or tc attachment, prog_attach, and a USDT link
   * (libbpf's USDT link has no fd). For 'perf_event_legacy', the perf
   * event's fd.
   */
  get fd(): number { return this.#meta().fd; }
  /** The kernel's link id (undefined where there is no kernel link object). */
  get id(): number | undefined { return this.#meta().id; }
  /** The id of the attached program. */
  get programId(): number | undefined { return this.#meta().progId; }
  /** What kind of attachment this is: the kernel's link type (BPF_LINK_TYPE_*, by name) or one of this library's names for attachments that are no kernel link. */
  get type(): LinkType {
    const m = this.#meta();
    if (m.kind === 'socket') return 'socket_filter';
    if (m.kind === 'usdt') return 'usdt';
    if (m.kind !== 'link') return m.kind;
    if (m.type === undefined) return 'perf_event_legacy';
    return LINK_TYPES[m.type] ?? (`unknown(${m.type})` as LinkType);
  }

  /**
   * Pins the link in bpffs: it stays attached after this process exits,
   * until unpinned. Only kernel links can be pinned: the others (a USDT
   * link, a socket filter, netlink XDP, a classic tc filter) are a BpfError
   * EOPNOTSUPP saying so.
   */
  pin(path: string): void {
    this.#live().pin(checkString('path', path));
  }

  /**
   * What the kernel says of the link now (bpf_obj_get_info_by_fd): its id,
   * program, type and the fields of its type (attach type, target, ifindex,
   * cgroup id, netns, ...). An attachment that is no kernel link (a socket
   * filter, netlink XDP, a classic tc filter, prog_attach, USDT) has no
   * kernel record: its info is `{ id: 0, type, progId }` from what this
   * library knows. After detach(): TypeError ERR_INVALID_STATE.
   */
  info(): LinkInfo {
    const m = this.#live().info();
    if (m.kind === 'link' && m.fd >= 0 && m.id !== undefined) return linkInfo(m.fd);
    return Object.freeze({ id: 0, type: this.type, progId: m.progId ?? 0, ...(m.ifindex ? { ifindex: m.ifindex } : {}) });
  }

  /**
   * Detaches the kernel link from its hook for every holder
   * (BPF_LINK_DETACH, 5.9+): the program stops running there although this
   * fd (and any pin, any other process's fd) still refers to the link,
   * which info() then shows detached. Only kernel links: others are a
   * TypeError ERR_INVALID_STATE.
   */
  forceDetach(): void {
    const m = this.#live().info();
    if (m.kind !== 'link' || m.fd < 0 || m.id === undefined) invalidState(`a ${this.type} attachment is no kernel link: use detach()`);
    introspect.linkDetach(m.fd, `link ${m.id}`);
    this.#info = undefined;
  }

  /** The interface of an XDP or tc attachment. */
  get ifindex(): number | undefined { return this.#meta().ifindex; }

  /** Makes the link run another program (BPF_LINK_UPDATE), where the kernel allows it. */
  update(program: { readonly fd: number; readonly name: string }): void {
    const native = this.#live();
    const fd = program?.fd;
    if (typeof fd !== 'number' || fd < 0) invalidState('update() needs a loaded BpfProgram');
    native.update(fd, `link ${this.#meta().id ?? '?'} to program ${program.name}`);
    this.#info = undefined;
  }

  /** @internal A new fd that runs the iterator when read. */
  iterFd(): number {
    return this.#live().iterFd();
  }

  /** Removes the pin that pin() made. */
  unpin(): void {
    this.#live().unpin();
  }

  /**
   * Detaches (bpf_link__destroy). A pinned link stays attached through its
   * pin; this releases only this handle. Idempotent.
   */
  detach(): void {
    const native = this.#native;
    if (!native) return;
    this.#native = undefined;
    attached.delete(this);
    if (this.#release) this.#release.detach();
    else native.detach();
    this.#onDetach?.(this);
  }

  /** detach(), under the name the other classes use. */
  close(): void {
    this.detach();
  }

  /** detach(), for `using`. */
  [Symbol.dispose](): void {
    this.detach();
  }
}
