// eBPF instruction builder: each function returns one `struct bpf_insn` (8 bytes; 16 for the
// LD_IMM64 forms) encoded exactly like the kernel's BPF_* macros in include/linux/filter.h, so
// hand-written programs can be loaded without a compiler. Validation happens before encoding
// because the verifier's complaint about a bad field is far harder to trace back to the call.

/**
 * An eBPF instruction builder, for programs written without a compiler (as
 * the kernel's samples/bpf/sock_example.c writes them). Each builder
 * returns one `Insn`: a `struct bpf_insn` of 8 bytes (16 for the
 * BPF_LD_IMM64 forms), encoded as the BPF_* macros of
 * include/linux/filter.h encode it, in host byte order. The constants have
 * the values of include/uapi/linux/bpf.h and bpf_common.h.
 *
 * Every argument is checked before anything is encoded: a wrong type is a
 * TypeError with code ERR_INVALID_ARG_TYPE; a register, offset or immediate
 * out of its field's range a RangeError ERR_OUT_OF_RANGE; an operation or
 * size the builder does not take a TypeError ERR_INVALID_ARG_VALUE. The
 * verifier still has the last word, at BpfProgram.load().
 *
 * Jump offsets (`off`) count 8-byte slots from the next instruction: an
 * LD_IMM64 form counts 2 (see `Insn.slots`).
 *
 * @example
 * ```ts
 * import { asm, BpfProgram } from 'libbpf-node';
 * // A socket filter that keeps TCP packets (IPv4 over Ethernet assumed):
 * // r0 = *(u8 *)skb[23]; if r0 != 6 goto drop; return -1; drop: return 0
 * using prog = BpfProgram.load({
 *   type: 'socket_filter',
 *   insns: [
 *     asm.mov64Reg(asm.R6, asm.R1),          // ldAbs reads the skb in r6
 *     asm.ldAbs(asm.B, 14 + 9),
 *     asm.jmpImm(asm.JNE, asm.R0, 6, 2),
 *     asm.mov64Imm(asm.R0, -1),
 *     asm.exit(),
 *     asm.mov64Imm(asm.R0, 0),
 *     asm.exit(),
 *   ],
 * });
 * ```
 * @module
 */

import { endianness } from 'node:os';
import { inspect } from 'node:util';
import { checkInt, fail, invalidArgType } from './internal/errors.js';
import { dataViewOf } from './internal/views.js';

// Errors are Node-style (class + `code`), from the library's shared helpers.
function badType(name: string, expected: string, v: unknown): never {
  return invalidArgType(name, `of type ${expected}`, v);
}
const int = checkInt;

// Opcode-like arguments are choices from a table, not ranges: report them the way Node reports
// an invalid enum value.
function choice(name: string, v: unknown, table: Readonly<Record<number, string>>, what: string): number {
  if (typeof v !== 'number') badType(name, 'number', v);
  if (!Object.hasOwn(table, v)) {
    fail(TypeError, 'ERR_INVALID_ARG_VALUE', `The argument '${name}' must be ${what}. Received ${inspect(v)}`);
  }
  return v;
}

const reg = (name: string, v: unknown): number => int(name, v, 0, 10);
const off16 = (name: string, v: unknown): number => int(name, v, -0x8000, 0x7fff);
// Accept the unsigned spelling too (e.g. 0xffffffff for a mask); the field is 32 bits either way.
const imm32 = (name: string, v: unknown): number => int(name, v, -0x8000_0000, 0xffff_ffff) | 0;

// ---------------------------------------------------------------------------------------------
// Constants, with the values of include/uapi/linux/bpf{,_common}.h.

/**
 * The eleven registers, BPF_REG_0 … BPF_REG_10 (values 0-10). R0: the
 * result of a helper call and the program's return value. R1-R5: a helper
 * call's arguments (clobbered by the call); on entry R1 holds the context
 * (e.g. a `struct __sk_buff *`). R6-R9: callee-saved. R10: the read-only
 * frame pointer of the 512-byte stack, addressed at negative offsets.
 */
export const R0 = 0, R1 = 1, R2 = 2, R3 = 3, R4 = 4, R5 = 5, R6 = 6, R7 = 7, R8 = 8, R9 = 9, R10 = 10;
/**
 * A register number, 0-10 (`asm.R0` … `asm.R10`); other numbers are a
 * RangeError ERR_OUT_OF_RANGE at run time.
 */
export type Reg = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10;

// instruction classes
/**
 * Instruction classes, the low 3 bits of an opcode (BPF_CLASS): LD = BPF_LD
 * (0x00), LDX = BPF_LDX (0x01), ST = BPF_ST (0x02), STX = BPF_STX (0x03),
 * ALU = BPF_ALU (0x04, 32-bit), JMP = BPF_JMP (0x05), JMP32 = BPF_JMP32
 * (0x06, 32-bit compares), ALU64 = BPF_ALU64 (0x07). The builders set the
 * class themselves; these are for `raw()` and for reading opcodes.
 */
export const LD = 0x00, LDX = 0x01, ST = 0x02, STX = 0x03, ALU = 0x04, JMP = 0x05, JMP32 = 0x06, ALU64 = 0x07;
// operand source
/**
 * The operand source bit of ALU and JMP opcodes (BPF_SRC): K = BPF_K (0x00,
 * the 32-bit immediate `imm`) and X = BPF_X (0x08, the register `src`).
 */
export const K = 0x00, X = 0x08;
// sizes and modes of the load/store classes
/**
 * Access sizes of the load and store classes (BPF_SIZE, bits 3-4): W = BPF_W
 * (0x00, 4 bytes, u32), H = BPF_H (0x08, 2 bytes, u16), B = BPF_B (0x10,
 * 1 byte, u8), DW = BPF_DW (0x18, 8 bytes, u64).
 */
export const W = 0x00, H = 0x08, B = 0x10, DW = 0x18;
/**
 * Addressing modes of the load and store classes (BPF_MODE, bits 5-7):
 * IMM = BPF_IMM (0x00, the 64-bit immediate of BPF_LD_IMM64), ABS = BPF_ABS
 * (0x20) and IND = BPF_IND (0x40) (the legacy packet loads of socket
 * filters), MEM = BPF_MEM (0x60, memory at register + offset), ATOMIC =
 * BPF_ATOMIC (0xc0, atomic operations on memory).
 */
export const IMM = 0x00, ABS = 0x20, IND = 0x40, MEM = 0x60, ATOMIC = 0xc0;
/** The access sizes of `ldxMem()`, `stxMem()` and `stMem()`: `asm.W`, `asm.H`, `asm.B` or `asm.DW`. */
export type Size = typeof W | typeof H | typeof B | typeof DW;
/** The sizes atomic operations take: `asm.W` (32-bit) or `asm.DW` (64-bit). */
export type AtomicSize = typeof W | typeof DW;
/** The sizes of the BPF_LD_ABS and BPF_LD_IND packet loads: `asm.W`, `asm.H` or `asm.B` (no DW). */
export type PacketSize = typeof W | typeof H | typeof B;

/**
 * ALU operations (BPF_OP, bits 4-7 of BPF_ALU and BPF_ALU64 opcodes):
 * ADD = BPF_ADD (0x00), SUB = BPF_SUB (0x10), MUL = BPF_MUL (0x20),
 * DIV = BPF_DIV (0x30, unsigned), OR = BPF_OR (0x40), AND = BPF_AND (0x50),
 * LSH = BPF_LSH (0x60), RSH = BPF_RSH (0x70, logical), NEG = BPF_NEG (0x80),
 * MOD = BPF_MOD (0x90, unsigned), XOR = BPF_XOR (0xa0), MOV = BPF_MOV
 * (0xb0), ARSH = BPF_ARSH (0xc0, sign-extending), END = BPF_END (0xd0, byte
 * swaps: `endian()`). ADD, AND, OR and XOR are also the codes of the
 * atomic operations.
 */
export const ADD = 0x00, SUB = 0x10, MUL = 0x20, DIV = 0x30, OR = 0x40, AND = 0x50, LSH = 0x60, RSH = 0x70,
  NEG = 0x80, MOD = 0x90, XOR = 0xa0, MOV = 0xb0, ARSH = 0xc0, END = 0xd0;
/**
 * The operations `alu64Imm()`, `alu64Reg()`, `alu32Imm()` and `alu32Reg()`
 * take: `asm.ADD` … `asm.ARSH`, not END (`endian()` builds those). NEG takes
 * no operand: only the immediate form with imm 0 (or `neg64()`/`neg32()`);
 * anything else is a TypeError ERR_INVALID_ARG_VALUE.
 */
export type AluOp = typeof ADD | typeof SUB | typeof MUL | typeof DIV | typeof OR | typeof AND | typeof LSH
  | typeof RSH | typeof NEG | typeof MOD | typeof XOR | typeof MOV | typeof ARSH;
/**
 * The byte order of a BPF_END instruction (the opcode's BPF_SRC bit):
 * TO_LE = BPF_TO_LE (0x00), TO_BE = BPF_TO_BE (0x08).
 */
export const TO_LE = 0x00, TO_BE = 0x08;
/** The byte order `endian()` takes: `asm.TO_LE` or `asm.TO_BE`. */
export type ByteOrder = typeof TO_LE | typeof TO_BE;

/**
 * Jump operations (BPF_OP, bits 4-7 of BPF_JMP and BPF_JMP32 opcodes):
 * JA = BPF_JA (0x00, unconditional: `ja()`), JEQ = BPF_JEQ (0x10, ==),
 * JGT = BPF_JGT (0x20, unsigned >), JGE = BPF_JGE (0x30, unsigned >=),
 * JSET = BPF_JSET (0x40, dst & operand != 0), JNE = BPF_JNE (0x50, !=),
 * JSGT = BPF_JSGT (0x60, signed >), JSGE = BPF_JSGE (0x70, signed >=),
 * CALL = BPF_CALL (0x80: `call()`, `callRel()`), EXIT = BPF_EXIT (0x90:
 * `exit()`), JLT = BPF_JLT (0xa0, unsigned <), JLE = BPF_JLE (0xb0,
 * unsigned <=), JSLT = BPF_JSLT (0xc0, signed <), JSLE = BPF_JSLE (0xd0,
 * signed <=).
 */
export const JA = 0x00, JEQ = 0x10, JGT = 0x20, JGE = 0x30, JSET = 0x40, JNE = 0x50, JSGT = 0x60, JSGE = 0x70,
  CALL = 0x80, EXIT = 0x90, JLT = 0xa0, JLE = 0xb0, JSLT = 0xc0, JSLE = 0xd0;
/** Conditional jumps; JA has its own builder, `ja()`. */
export type JmpOp = typeof JEQ | typeof JGT | typeof JGE | typeof JSET | typeof JNE | typeof JSGT | typeof JSGE
  | typeof JLT | typeof JLE | typeof JSLT | typeof JSLE;

// atomic operations go in the imm field of BPF_STX|BPF_ATOMIC
/**
 * Atomic operation codes, for the imm field of BPF_STX | BPF_ATOMIC:
 * FETCH = BPF_FETCH (0x01, also load the old value into src), XCHG =
 * BPF_XCHG (0xe1), CMPXCHG = BPF_CMPXCHG (0xf1). The plain operations use
 * the ALU codes ADD, AND, OR and XOR. The `atomic*()` builders set them.
 */
export const FETCH = 0x01, XCHG = 0xe0 | FETCH, CMPXCHG = 0xf0 | FETCH;
// src_reg markers the kernel rewrites at load time
/**
 * src_reg markers the kernel resolves at load time: PSEUDO_MAP_FD =
 * BPF_PSEUDO_MAP_FD (1: a BPF_LD_IMM64 whose imm is a map fd, `ldMapFd()`),
 * PSEUDO_MAP_VALUE = BPF_PSEUDO_MAP_VALUE (2: the address of a map value,
 * `ldMapValue()`), PSEUDO_CALL = BPF_PSEUDO_CALL (1, in a BPF_CALL: a
 * bpf-to-bpf call, `callRel()`).
 */
export const PSEUDO_MAP_FD = 1, PSEUDO_MAP_VALUE = 2, PSEUDO_CALL = 1;

// Each table doubles as the set of accepted values and as the disassembler's spelling.
const ALU_OPS: Readonly<Record<number, string>> = {
  [ADD]: '+=', [SUB]: '-=', [MUL]: '*=', [DIV]: '/=', [OR]: '|=', [AND]: '&=', [LSH]: '<<=', [RSH]: '>>=',
  [NEG]: 'neg', [MOD]: '%=', [XOR]: '^=', [MOV]: '=', [ARSH]: 's>>=',
};
const JMP_OPS: Readonly<Record<number, string>> = {
  [JEQ]: '==', [JGT]: '>', [JGE]: '>=', [JSET]: '&', [JNE]: '!=', [JSGT]: 's>', [JSGE]: 's>=',
  [JLT]: '<', [JLE]: '<=', [JSLT]: 's<', [JSLE]: 's<=',
};
const SIZES: Readonly<Record<number, string>> = { [W]: 'u32', [H]: 'u16', [B]: 'u8', [DW]: 'u64' };
const PACKET_SIZES: Readonly<Record<number, string>> = { [W]: 'u32', [H]: 'u16', [B]: 'u8' };
const ATOMIC_SIZES: Readonly<Record<number, string>> = { [W]: 'u32', [DW]: 'u64' };
const ENDIAN_BITS: Readonly<Record<number, string>> = { 16: '16', 32: '32', 64: '64' };
const BYTE_ORDERS: Readonly<Record<number, string>> = { [TO_LE]: 'le', [TO_BE]: 'be' };

// ---------------------------------------------------------------------------------------------
// Helper ids: the order of ___BPF_FUNC_MAPPER in include/uapi/linux/bpf.h, index = BPF_FUNC_* id.
// Generated from the 6.1 uapi header (ids 0..209), plus 210..211 from mainline, where the list was
// then frozen (new functionality goes to kfuncs).

const HELPER_NAMES = [
  /*   0 */ 'unspec', 'map_lookup_elem', 'map_update_elem', 'map_delete_elem', 'probe_read',
  /*   5 */ 'ktime_get_ns', 'trace_printk', 'get_prandom_u32', 'get_smp_processor_id',
  /*   9 */ 'skb_store_bytes', 'l3_csum_replace', 'l4_csum_replace', 'tail_call', 'clone_redirect',
  /*  14 */ 'get_current_pid_tgid', 'get_current_uid_gid', 'get_current_comm', 'get_cgroup_classid',
  /*  18 */ 'skb_vlan_push', 'skb_vlan_pop', 'skb_get_tunnel_key', 'skb_set_tunnel_key',
  /*  22 */ 'perf_event_read', 'redirect', 'get_route_realm', 'perf_event_output', 'skb_load_bytes',
  /*  27 */ 'get_stackid', 'csum_diff', 'skb_get_tunnel_opt', 'skb_set_tunnel_opt',
  /*  31 */ 'skb_change_proto', 'skb_change_type', 'skb_under_cgroup', 'get_hash_recalc',
  /*  35 */ 'get_current_task', 'probe_write_user', 'current_task_under_cgroup', 'skb_change_tail',
  /*  39 */ 'skb_pull_data', 'csum_update', 'set_hash_invalid', 'get_numa_node_id',
  /*  43 */ 'skb_change_head', 'xdp_adjust_head', 'probe_read_str', 'get_socket_cookie',
  /*  47 */ 'get_socket_uid', 'set_hash', 'setsockopt', 'skb_adjust_room', 'redirect_map',
  /*  52 */ 'sk_redirect_map', 'sock_map_update', 'xdp_adjust_meta', 'perf_event_read_value',
  /*  56 */ 'perf_prog_read_value', 'getsockopt', 'override_return', 'sock_ops_cb_flags_set',
  /*  60 */ 'msg_redirect_map', 'msg_apply_bytes', 'msg_cork_bytes', 'msg_pull_data', 'bind',
  /*  65 */ 'xdp_adjust_tail', 'skb_get_xfrm_state', 'get_stack', 'skb_load_bytes_relative',
  /*  69 */ 'fib_lookup', 'sock_hash_update', 'msg_redirect_hash', 'sk_redirect_hash',
  /*  73 */ 'lwt_push_encap', 'lwt_seg6_store_bytes', 'lwt_seg6_adjust_srh', 'lwt_seg6_action',
  /*  77 */ 'rc_repeat', 'rc_keydown', 'skb_cgroup_id', 'get_current_cgroup_id',
  /*  81 */ 'get_local_storage', 'sk_select_reuseport', 'skb_ancestor_cgroup_id', 'sk_lookup_tcp',
  /*  85 */ 'sk_lookup_udp', 'sk_release', 'map_push_elem', 'map_pop_elem', 'map_peek_elem',
  /*  90 */ 'msg_push_data', 'msg_pop_data', 'rc_pointer_rel', 'spin_lock', 'spin_unlock',
  /*  95 */ 'sk_fullsock', 'tcp_sock', 'skb_ecn_set_ce', 'get_listener_sock', 'skc_lookup_tcp',
  /* 100 */ 'tcp_check_syncookie', 'sysctl_get_name', 'sysctl_get_current_value',
  /* 103 */ 'sysctl_get_new_value', 'sysctl_set_new_value', 'strtol', 'strtoul', 'sk_storage_get',
  /* 108 */ 'sk_storage_delete', 'send_signal', 'tcp_gen_syncookie', 'skb_output',
  /* 112 */ 'probe_read_user', 'probe_read_kernel', 'probe_read_user_str', 'probe_read_kernel_str',
  /* 116 */ 'tcp_send_ack', 'send_signal_thread', 'jiffies64', 'read_branch_records',
  /* 120 */ 'get_ns_current_pid_tgid', 'xdp_output', 'get_netns_cookie',
  /* 123 */ 'get_current_ancestor_cgroup_id', 'sk_assign', 'ktime_get_boot_ns', 'seq_printf',
  /* 127 */ 'seq_write', 'sk_cgroup_id', 'sk_ancestor_cgroup_id', 'ringbuf_output',
  /* 131 */ 'ringbuf_reserve', 'ringbuf_submit', 'ringbuf_discard', 'ringbuf_query', 'csum_level',
  /* 136 */ 'skc_to_tcp6_sock', 'skc_to_tcp_sock', 'skc_to_tcp_timewait_sock',
  /* 139 */ 'skc_to_tcp_request_sock', 'skc_to_udp6_sock', 'get_task_stack', 'load_hdr_opt',
  /* 143 */ 'store_hdr_opt', 'reserve_hdr_opt', 'inode_storage_get', 'inode_storage_delete',
  /* 147 */ 'd_path', 'copy_from_user', 'snprintf_btf', 'seq_printf_btf', 'skb_cgroup_classid',
  /* 152 */ 'redirect_neigh', 'per_cpu_ptr', 'this_cpu_ptr', 'redirect_peer', 'task_storage_get',
  /* 157 */ 'task_storage_delete', 'get_current_task_btf', 'bprm_opts_set', 'ktime_get_coarse_ns',
  /* 161 */ 'ima_inode_hash', 'sock_from_file', 'check_mtu', 'for_each_map_elem', 'snprintf',
  /* 166 */ 'sys_bpf', 'btf_find_by_name_kind', 'sys_close', 'timer_init', 'timer_set_callback',
  /* 171 */ 'timer_start', 'timer_cancel', 'get_func_ip', 'get_attach_cookie', 'task_pt_regs',
  /* 176 */ 'get_branch_snapshot', 'trace_vprintk', 'skc_to_unix_sock', 'kallsyms_lookup_name',
  /* 180 */ 'find_vma', 'loop', 'strncmp', 'get_func_arg', 'get_func_ret', 'get_func_arg_cnt',
  /* 186 */ 'get_retval', 'set_retval', 'xdp_get_buff_len', 'xdp_load_bytes', 'xdp_store_bytes',
  /* 191 */ 'copy_from_user_task', 'skb_set_tstamp', 'ima_file_hash', 'kptr_xchg',
  /* 195 */ 'map_lookup_percpu_elem', 'skc_to_mptcp_sock', 'dynptr_from_mem',
  /* 198 */ 'ringbuf_reserve_dynptr', 'ringbuf_submit_dynptr', 'ringbuf_discard_dynptr',
  /* 201 */ 'dynptr_read', 'dynptr_write', 'dynptr_data', 'tcp_raw_gen_syncookie_ipv4',
  /* 205 */ 'tcp_raw_gen_syncookie_ipv6', 'tcp_raw_check_syncookie_ipv4',
  /* 207 */ 'tcp_raw_check_syncookie_ipv6', 'ktime_get_tai_ns', 'user_ringbuf_drain',
  /* 210 */ 'cgrp_storage_get', 'cgrp_storage_delete',
] as const;

/** @inline */
type HelperNames = typeof HELPER_NAMES;
/**
 * A BPF helper's name without its `bpf_` prefix: 'map_lookup_elem' for
 * bpf_map_lookup_elem() (BPF_FUNC_map_lookup_elem). The names of
 * ___BPF_FUNC_MAPPER in include/uapi/linux/bpf.h, ids 0-211 (the list ends
 * with cgrp_storage_delete; newer functionality is kfuncs).
 */
export type HelperName = HelperNames[number];
/** Helper ids by name: the BPF_FUNC_* values of include/uapi/linux/bpf.h. */
export type Helpers = {
  readonly [I in keyof HelperNames as I extends `${number}` ? HelperNames[I] : never]:
    I extends `${infer N extends number}` ? N : never;
};
/**
 * Helper ids by name (a frozen object): `asm.helpers.map_lookup_elem` is 1,
 * BPF_FUNC_map_lookup_elem. `call()` takes either.
 */
export const helpers: Helpers = Object.freeze(Object.fromEntries(HELPER_NAMES.map((n, i) => [n, i]))) as Helpers;

// ---------------------------------------------------------------------------------------------
// Instructions.

// struct bpf_insn declares dst_reg:4 before src_reg:4, and bitfields are allocated from the
// least significant bit on little-endian ABIs but from the most significant on big-endian ones;
// off and imm are host-endian too, since the kernel reads the struct natively.
const LITTLE = endianness() === 'LE';

type Slot = readonly [code: number, dst: number, src: number, off: number, imm: number];

const TOKEN = Symbol('Insn');
let create!: (text: string, slots: readonly Slot[]) => Insn;
let bytesOf!: (insn: Insn) => Uint8Array;

/**
 * One eBPF instruction: a `struct bpf_insn` (one 8-byte slot), or the two
 * slots of a BPF_LD_IMM64 form, encoded in host byte order. Made only by
 * this module's builders (`new Insn()` is a TypeError
 * ERR_ILLEGAL_CONSTRUCTOR). Frozen, so one instruction can be shared
 * between programs; it holds no kernel resource and has nothing to close.
 * Pass an array of them as `insns` to BpfProgram.load(), or concatenate
 * them with `assemble()`.
 *
 * @example
 * ```ts
 * const insn = asm.mov64Reg(asm.R6, asm.R1);
 * insn.text;  // 'r6 = r1'
 * insn.slots; // 1
 * insn.bytes; // <Buffer bf 16 00 00 00 00 00 00> on a little-endian host
 * ```
 */
export class Insn {
  readonly #bytes: Uint8Array;
  /** Disassembly in the verifier log's notation, e.g. `r6 = r1`. */
  readonly text: string;

  private constructor(token: symbol, text: string, slots: readonly Slot[]) {
    if (token !== TOKEN) fail(TypeError, 'ERR_ILLEGAL_CONSTRUCTOR', 'Illegal constructor: use the asm builders');
    this.#bytes = new Uint8Array(8 * slots.length);
    const view = new DataView(this.#bytes.buffer);
    slots.forEach(([code, dst, src, off, imm], i) => {
      view.setUint8(8 * i, code);
      view.setUint8(8 * i + 1, LITTLE ? (src << 4) | dst : (dst << 4) | src);
      view.setInt16(8 * i + 2, off, LITTLE);
      view.setInt32(8 * i + 4, imm, LITTLE);
    });
    this.text = text;
    Object.freeze(this);
  }

  /** 8-byte slots taken: 2 for LD_IMM64 forms, which jump offsets must count. */
  get slots(): 1 | 2 {
    return this.#bytes.length === 16 ? 2 : 1;
  }

  /** A copy, so an instruction shared between programs can't be altered through it. */
  get bytes(): Buffer {
    return Buffer.from(this.#bytes);
  }

  /** The disassembly, `text`. */
  toString(): string {
    return this.text;
  }

  static {
    create = (text, slots) => new Insn(TOKEN, text, slots);
    bytesOf = (insn) => insn.#bytes;
  }
}

/** Concatenates instructions into the buffer the kernel's prog_load expects. */
export function assemble(insns: readonly Insn[]): Buffer {
  if (!Array.isArray(insns)) badType('insns', 'Array', insns);
  const parts = insns.map((insn: unknown, i) =>
    insn instanceof Insn ? bytesOf(insn) : badType(`insns[${i}]`, 'Insn', insn));
  return Buffer.concat(parts);
}

const one = (text: string, code: number, dst: number, src: number, off: number, imm: number): Insn =>
  create(text, [[code, dst, src, off, imm]]);

const signed = (n: number): string => (n < 0 ? `${n}` : `+${n}`);
const mem = (size: number, base: number, off: number): string => `*(${SIZES[size]} *)(r${base} ${signed(off)})`;

/** BPF_RAW_INSN: any single slot, unchecked beyond field widths. */
export function raw(code: number, dst: number, src: number, off: number, imm: number): Insn {
  const c = int('code', code, 0, 0xff);
  const d = int('dst', dst, 0, 15), s = int('src', src, 0, 15);
  const o = off16('off', off), i = imm32('imm', imm);
  return one(`raw(0x${c.toString(16).padStart(2, '0')}, ${d}, ${s}, ${o}, ${i})`, c, d, s, o, i);
}

// ---- ALU

function alu(cls: typeof ALU | typeof ALU64, srcKind: typeof K | typeof X) {
  const r = cls === ALU64 ? 'r' : 'w';
  return (op: AluOp, dst: Reg, operand: number): Insn => {
    const o = choice('op', op, ALU_OPS, 'an ALU operation (asm.ADD ... asm.ARSH)');
    const d = reg('dst', dst);
    const s = srcKind === X ? reg('src', operand) : 0;
    const imm = srcKind === K ? imm32('imm', operand) : 0;
    // The verifier only accepts NEG as the K form with every other field zero.
    if (o === NEG && (srcKind === X || imm !== 0)) {
      fail(TypeError, 'ERR_INVALID_ARG_VALUE', "asm.NEG takes no operand: use neg64()/neg32()");
    }
    const text = o === NEG ? `${r}${d} = -${r}${d}`
      : `${r}${d} ${ALU_OPS[o]} ${srcKind === X ? `${r}${s}` : imm}`;
    return one(text, cls | o | srcKind, d, s, 0, imm);
  };
}

/** BPF_ALU64_IMM: dst op= imm (imm sign-extended to 64 bits). */
export const alu64Imm: (op: AluOp, dst: Reg, imm: number) => Insn = alu(ALU64, K);
/** BPF_ALU64_REG: dst op= src. */
export const alu64Reg: (op: AluOp, dst: Reg, src: Reg) => Insn = alu(ALU64, X);
/** BPF_ALU32_IMM: 32-bit op; the upper half of dst is zeroed. */
export const alu32Imm: (op: AluOp, dst: Reg, imm: number) => Insn = alu(ALU, K);
/** BPF_ALU32_REG */
export const alu32Reg: (op: AluOp, dst: Reg, src: Reg) => Insn = alu(ALU, X);

/** BPF_MOV64_IMM: dst = imm, sign-extended to 64 bits (imm: -2^31 … 2^32 - 1, the 32 bits either way). */
export const mov64Imm = (dst: Reg, imm: number): Insn => alu64Imm(MOV, dst, imm);
/** BPF_MOV64_REG: dst = src. */
export const mov64Reg = (dst: Reg, src: Reg): Insn => alu64Reg(MOV, dst, src);
/** BPF_MOV32_IMM: the low 32 bits of dst = imm; the upper half is zeroed. */
export const mov32Imm = (dst: Reg, imm: number): Insn => alu32Imm(MOV, dst, imm);
/** BPF_MOV32_REG: the low 32 bits of dst = those of src; the upper half is zeroed. */
export const mov32Reg = (dst: Reg, src: Reg): Insn => alu32Reg(MOV, dst, src);
/** BPF_ALU64 | BPF_NEG: dst = -dst. */
export const neg64 = (dst: Reg): Insn => alu64Imm(NEG, dst, 0);
/** BPF_ALU | BPF_NEG: the low 32 bits of dst negated; the upper half is zeroed. */
export const neg32 = (dst: Reg): Insn => alu32Imm(NEG, dst, 0);

/** BPF_ENDIAN: convert the low `bits` of dst between host order and `order`, zeroing the rest. */
export function endian(order: ByteOrder, dst: Reg, bits: 16 | 32 | 64): Insn {
  const o = choice('order', order, BYTE_ORDERS, 'asm.TO_LE or asm.TO_BE');
  const d = reg('dst', dst);
  const n = choice('bits', bits, ENDIAN_BITS, '16, 32 or 64');
  return one(`r${d} = ${BYTE_ORDERS[o]}${n} r${d}`, ALU | END | o, d, 0, 0, n);
}
/** `endian(TO_LE, dst, bits)`: `r1 = le16 r1` and the like (bits: 16, 32 or 64). */
export const toLe = (dst: Reg, bits: 16 | 32 | 64): Insn => endian(TO_LE, dst, bits);
/** `endian(TO_BE, dst, bits)`: `r1 = be16 r1` and the like, e.g. for network-order fields. */
export const toBe = (dst: Reg, bits: 16 | 32 | 64): Insn => endian(TO_BE, dst, bits);

// ---- 64-bit immediates (two slots; the second has opcode 0)

const LD_IMM64 = LD | DW | IMM;

function imm64(text: string, dst: number, src: number, lo: number, hi: number): Insn {
  return create(text, [[LD_IMM64, dst, src, 0, lo], [0, 0, 0, 0, hi]]);
}

/** BPF_LD_IMM64: dst = a full 64-bit constant; numbers must be safe integers, else pass a bigint. */
export function ldImm64(dst: Reg, value: bigint | number): Insn {
  const d = reg('dst', dst);
  let v: bigint;
  if (typeof value === 'bigint') v = value;
  else if (typeof value === 'number') v = BigInt(int('value', value, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER));
  else return badType('value', 'bigint or number', value);
  if (v < -(1n << 63n) || v >= 1n << 64n) {
    fail(RangeError, 'ERR_OUT_OF_RANGE',
      `The value of "value" is out of range. It must be >= -(2n ** 63n) && < 2n ** 64n. Received ${v}n`);
  }
  const u = BigInt.asUintN(64, v);
  const lo = Number(BigInt.asIntN(32, u)), hi = Number(BigInt.asIntN(32, u >> 32n));
  return imm64(`r${d} = 0x${u.toString(16)} ll`, d, 0, lo, hi);
}

/** BPF_LD_MAP_FD: dst = the map behind this process's fd (the kernel swaps in the map pointer). */
export function ldMapFd(dst: Reg, fd: number): Insn {
  const d = reg('dst', dst), f = int('fd', fd, 0, 0x7fff_ffff);
  return imm64(`r${d} = map[fd:${f}]`, d, PSEUDO_MAP_FD, f, 0);
}

/** BPF_LD_MAP_VALUE: dst = address of byte `offset` of an array map's single value. */
export function ldMapValue(dst: Reg, fd: number, offset: number): Insn {
  const d = reg('dst', dst), f = int('fd', fd, 0, 0x7fff_ffff), o = int('offset', offset, 0, 0xffff_ffff);
  return imm64(`r${d} = map_value[fd:${f}] + ${o}`, d, PSEUDO_MAP_VALUE, f, o | 0);
}

// ---- loads and stores

/** BPF_LD_ABS: r0 = packet[imm] (socket-filter legacy; implicit input in r6 = skb). */
export function ldAbs(size: PacketSize, imm: number): Insn {
  const s = choice('size', size, PACKET_SIZES, 'asm.B, asm.H or asm.W');
  const i = imm32('imm', imm);
  return one(`r0 = *(${SIZES[s]} *)skb[${i}]`, LD | s | ABS, 0, 0, 0, i);
}

/** BPF_LD_IND: r0 = packet[src + imm]. */
export function ldInd(size: PacketSize, src: Reg, imm: number): Insn {
  const s = choice('size', size, PACKET_SIZES, 'asm.B, asm.H or asm.W');
  const r = reg('src', src), i = imm32('imm', imm);
  return one(`r0 = *(${SIZES[s]} *)skb[r${r} + ${i}]`, LD | s | IND, 0, r, 0, i);
}

const SIZE_WHAT = 'asm.B, asm.H, asm.W or asm.DW';

/** BPF_LDX_MEM: dst = *(size *)(src + off). */
export function ldxMem(size: Size, dst: Reg, src: Reg, off: number): Insn {
  const s = choice('size', size, SIZES, SIZE_WHAT);
  const d = reg('dst', dst), r = reg('src', src), o = off16('off', off);
  return one(`r${d} = ${mem(s, r, o)}`, LDX | s | MEM, d, r, o, 0);
}

/** BPF_STX_MEM: *(size *)(dst + off) = src. */
export function stxMem(size: Size, dst: Reg, src: Reg, off: number): Insn {
  const s = choice('size', size, SIZES, SIZE_WHAT);
  const d = reg('dst', dst), r = reg('src', src), o = off16('off', off);
  return one(`${mem(s, d, o)} = r${r}`, STX | s | MEM, d, r, o, 0);
}

/** BPF_ST_MEM: *(size *)(dst + off) = imm. */
export function stMem(size: Size, dst: Reg, off: number, imm: number): Insn {
  const s = choice('size', size, SIZES, SIZE_WHAT);
  const d = reg('dst', dst), o = off16('off', off), i = imm32('imm', imm);
  return one(`${mem(s, d, o)} = ${i}`, ST | s | MEM, d, 0, o, i);
}

// ---- atomics: BPF_ATOMIC_OP(size, op, dst, src, off) on *(size *)(dst + off)

const ATOMIC_NAMES: Readonly<Record<number, string>> = { [ADD]: 'add', [AND]: 'and', [OR]: 'or', [XOR]: 'xor' };

function atomic(op: number) {
  return (size: AtomicSize, dst: Reg, src: Reg, off: number): Insn => {
    const s = choice('size', size, ATOMIC_SIZES, 'asm.W or asm.DW');
    const d = reg('dst', dst), r = reg('src', src), o = off16('off', off);
    const [w, bits] = s === DW ? ['r', '64'] : ['w', ''];
    const addr = `(${SIZES[s]} *)(r${d} ${signed(o)})`;
    const text = op === CMPXCHG ? `${w}0 = atomic${bits}_cmpxchg(${addr}, ${w}0, ${w}${r})`
      : op === XCHG ? `${w}${r} = atomic${bits}_xchg(${addr}, ${w}${r})`
      : op & FETCH ? `${w}${r} = atomic${bits}_fetch_${ATOMIC_NAMES[op & ~FETCH]}(${addr}, ${w}${r})`
      : `lock *${addr} ${ALU_OPS[op]} ${w}${r}`;
    return one(text, STX | s | ATOMIC, d, r, o, op);
  };
}

/**
 * An atomic builder: BPF_ATOMIC_OP(size, op, dst, src, off), an atomic
 * operation on `*(size *)(dst + off)` with the operand in src; size
 * `asm.W` or `asm.DW`, off a signed 16-bit byte offset.
 */
export type AtomicBuilder = (size: AtomicSize, dst: Reg, src: Reg, off: number) => Insn;
/** BPF_ADD (BPF_XADD of old): `lock *(size *)(dst + off) += src`. */
export const atomicAdd: AtomicBuilder = atomic(ADD);
/** BPF_AND: `lock *(size *)(dst + off) &= src`. */
export const atomicAnd: AtomicBuilder = atomic(AND);
/** BPF_OR: `lock *(size *)(dst + off) |= src`. */
export const atomicOr: AtomicBuilder = atomic(OR);
/** BPF_XOR: `lock *(size *)(dst + off) ^= src`. */
export const atomicXor: AtomicBuilder = atomic(XOR);
/** BPF_ADD | BPF_FETCH: adds src, and (as every fetch form does) loads the old value into src. */
export const atomicFetchAdd: AtomicBuilder = atomic(ADD | FETCH);
/** BPF_AND | BPF_FETCH: `src = atomic_fetch_and(dst + off, src)`. */
export const atomicFetchAnd: AtomicBuilder = atomic(AND | FETCH);
/** BPF_OR | BPF_FETCH: `src = atomic_fetch_or(dst + off, src)`. */
export const atomicFetchOr: AtomicBuilder = atomic(OR | FETCH);
/** BPF_XOR | BPF_FETCH: `src = atomic_fetch_xor(dst + off, src)`. */
export const atomicFetchXor: AtomicBuilder = atomic(XOR | FETCH);
/** src = xchg(*(dst + off), src) */
export const atomicXchg: AtomicBuilder = atomic(XCHG);
/** r0 = cmpxchg(*(dst + off), r0, src): compares against r0 implicitly. */
export const atomicCmpxchg: AtomicBuilder = atomic(CMPXCHG);

// ---- jumps; offsets count 8-byte slots from the next instruction

function jmp(cls: typeof JMP | typeof JMP32, srcKind: typeof K | typeof X) {
  const r = cls === JMP ? 'r' : 'w';
  return (op: JmpOp, dst: Reg, operand: number, off: number): Insn => {
    const o = choice('op', op, JMP_OPS, 'a conditional jump (asm.JEQ ... asm.JSLE; use ja() for JA)');
    const d = reg('dst', dst);
    const s = srcKind === X ? reg('src', operand) : 0;
    const imm = srcKind === K ? imm32('imm', operand) : 0;
    const f = off16('off', off);
    const text = `if ${r}${d} ${JMP_OPS[o]} ${srcKind === X ? `${r}${s}` : imm} goto pc${signed(f)}`;
    return one(text, cls | o | srcKind, d, s, f, imm);
  };
}

/** BPF_JMP_IMM: if (dst op imm) goto pc + off. */
export const jmpImm: (op: JmpOp, dst: Reg, imm: number, off: number) => Insn = jmp(JMP, K);
/** BPF_JMP_REG: if (dst op src) goto pc + off. */
export const jmpReg: (op: JmpOp, dst: Reg, src: Reg, off: number) => Insn = jmp(JMP, X);
/** BPF_JMP32_IMM: compares the low 32 bits only. */
export const jmp32Imm: (op: JmpOp, dst: Reg, imm: number, off: number) => Insn = jmp(JMP32, K);
/** BPF_JMP32_REG */
export const jmp32Reg: (op: JmpOp, dst: Reg, src: Reg, off: number) => Insn = jmp(JMP32, X);

/** BPF_JMP_A: goto pc + off. */
export function ja(off: number): Insn {
  const f = off16('off', off);
  return one(`goto pc${signed(f)}`, JMP | JA, 0, 0, f, 0);
}

/** BPF_EMIT_CALL: call a helper by id or by name (`'map_lookup_elem'`); args in r1..r5, result in r0. */
export function call(helper: number | HelperName): Insn {
  let id: number;
  if (typeof helper === 'string') {
    if (!Object.hasOwn(helpers, helper)) {
      fail(TypeError, 'ERR_INVALID_ARG_VALUE',
        `The argument 'helper' must be a BPF helper name. Received ${inspect(helper)}`);
    }
    id = helpers[helper];
  } else if (typeof helper === 'number') {
    id = int('helper', helper, 0, 0x7fff_ffff);
  } else {
    return badType('helper', 'number or string', helper);
  }
  return one(`call ${HELPER_NAMES[id] ?? 'unknown'}#${id}`, JMP | CALL, 0, 0, 0, id);
}

/** BPF_CALL_REL: bpf-to-bpf call to the subprogram starting at pc + offset + 1. */
export function callRel(offset: number): Insn {
  const i = imm32('offset', offset);
  return one(`call pc${signed(i)}`, JMP | CALL, 0, PSEUDO_CALL, 0, i);
}

/** BPF_EXIT_INSN: return r0. */
export const exit = (): Insn => one('exit', JMP | EXIT, 0, 0, 0, 0);

// ---- the other way: bytes to instructions

/** Options of `disassemble()`. */
export interface DisassembleOptions {
  /**
   * What the imm of a map reference (LD_IMM64 with src_reg 1 or 2) is: 'fd'
   * in a program to load, 'id' in one the kernel dumped (it swaps the map
   * pointer back for the map's id). Default 'fd'.
   */
  mapRefs?: 'fd' | 'id';
}

/**
 * Decodes `struct bpf_insn` bytes (the host's byte order, 8 bytes a slot)
 * into instructions whose `bytes` are the input's and whose `text` is the
 * verifier log's notation. An LD_IMM64 takes two slots; an opcode this
 * module has no notation for reads as `raw(...)`. A kernel dump
 * (BpfProgram#xlatedInstructions) holds the kernel's rewrites: helper calls
 * carry its internal offsets, so their names may read 'unknown'.
 */
export function disassemble(bytes: Buffer | Uint8Array, opts: DisassembleOptions = {}): Insn[] {
  if (!(bytes instanceof Uint8Array)) badType('bytes', 'Buffer or Uint8Array', bytes);
  if (bytes.length % 8 !== 0) {
    fail(RangeError, 'ERR_INVALID_BUFFER_SIZE', `bpf instructions are 8 bytes each; got ${bytes.length} bytes`);
  }
  const ref = opts.mapRefs === 'id' ? 'id' : 'fd';
  const view = dataViewOf(bytes);
  const slot = (i: number): Slot => {
    const regs = view.getUint8(8 * i + 1);
    return [view.getUint8(8 * i), LITTLE ? regs & 15 : regs >> 4, LITTLE ? regs >> 4 : regs & 15,
      view.getInt16(8 * i + 2, LITTLE), view.getInt32(8 * i + 4, LITTLE)];
  };
  const out: Insn[] = [];
  const n = bytes.length / 8;
  for (let i = 0; i < n; i++) {
    const s = slot(i);
    if (s[0] === LD_IMM64 && i + 1 < n) {
      const hi = slot(i + 1);
      out.push(create(ldImm64Text(s, hi[4], ref), [s, hi]));
      i++;
      continue;
    }
    out.push(create(insnText(s), [s]));
  }
  return out;
}

function rawText([c, d, s, o, i]: Slot): string {
  return `raw(0x${c.toString(16).padStart(2, '0')}, ${d}, ${s}, ${o}, ${i})`;
}

function ldImm64Text([, d, s, , lo]: Slot, hi: number, ref: 'fd' | 'id'): string {
  if (s === PSEUDO_MAP_FD) return `r${d} = map[${ref}:${lo}]`;
  if (s === PSEUDO_MAP_VALUE) return `r${d} = map_value[${ref}:${lo}] + ${hi >>> 0}`;
  const u = (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
  if (s === 0) return `r${d} = 0x${u.toString(16)} ll`;
  return `r${d} = ldimm64(src ${s}, 0x${u.toString(16)})`;
}

function insnText(insn: Slot): string {
  const [code, d, s, off, imm] = insn;
  const cls = code & 0x07;
  if (cls === ALU || cls === ALU64) {
    const r = cls === ALU64 ? 'r' : 'w', op = code & 0xf0, x = (code & X) !== 0;
    if (op === END) return `r${d} = ${BYTE_ORDERS[code & 0x08]}${imm} r${d}`;
    if (op === NEG) return `${r}${d} = -${r}${d}`;
    if (off !== 0 || !Object.hasOwn(ALU_OPS, op)) return rawText(insn); // movsx, sdiv/smod (v4)
    return `${r}${d} ${ALU_OPS[op]} ${x ? `${r}${s}` : imm}`;
  }
  if (cls === JMP || cls === JMP32) {
    const op = code & 0xf0, x = (code & X) !== 0, r = cls === JMP ? 'r' : 'w';
    if (cls === JMP && op === JA) return `goto pc${signed(off)}`;
    if (cls === JMP && op === EXIT) return 'exit';
    if (cls === JMP && op === CALL) {
      if (s === PSEUDO_CALL) return `call pc${signed(imm)}`;
      if (s === 2) return `call kfunc#${imm}`;
      return `call ${HELPER_NAMES[imm] ?? 'unknown'}#${imm}`;
    }
    if (!Object.hasOwn(JMP_OPS, op)) return rawText(insn);
    return `if ${r}${d} ${JMP_OPS[op]} ${x ? `${r}${s}` : imm} goto pc${signed(off)}`;
  }
  const size = code & 0x18, mode = code & 0xe0;
  if (cls === LDX && mode === MEM) return `r${d} = ${mem(size, s, off)}`;
  if (cls === STX && mode === MEM) return `${mem(size, d, off)} = r${s}`;
  if (cls === ST && mode === MEM) return `${mem(size, d, off)} = ${imm}`;
  if (cls === LD && mode === ABS && size !== DW) return `r0 = *(${SIZES[size]} *)skb[${imm}]`;
  if (cls === LD && mode === IND && size !== DW) return `r0 = *(${SIZES[size]} *)skb[r${s} + ${imm}]`;
  if (cls === STX && mode === ATOMIC && (size === W || size === DW)) {
    const [w, bits] = size === DW ? ['r', '64'] : ['w', ''];
    const addr = `(${SIZES[size]} *)(r${d} ${signed(off)})`;
    if (imm === CMPXCHG) return `${w}0 = atomic${bits}_cmpxchg(${addr}, ${w}0, ${w}${s})`;
    if (imm === XCHG) return `${w}${s} = atomic${bits}_xchg(${addr}, ${w}${s})`;
    const base = imm & ~FETCH;
    if (Object.hasOwn(ATOMIC_NAMES, base)) {
      return imm & FETCH ? `${w}${s} = atomic${bits}_fetch_${ATOMIC_NAMES[base]}(${addr}, ${w}${s})`
        : `lock *${addr} ${ALU_OPS[base]} ${w}${s}`;
    }
  }
  return rawText(insn);
}
