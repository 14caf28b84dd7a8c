// The socket filter of the kernel's samples/bpf/sock_example.c, instruction
// by instruction: count packets per IP protocol in the array map `mapFd`.
import { asm } from '../ts/index.js';

export function sockExampleInsns(mapFd: number): asm.Insn[] {
  return [
    asm.mov64Reg(asm.R6, asm.R1),                 // r6 = skb (LD_ABS reads through r6)
    asm.ldAbs(asm.B, 14 + 9),                     // r0 = ip->protocol
    asm.stxMem(asm.W, asm.R10, asm.R0, -4),       // *(u32 *)(fp - 4) = r0
    asm.mov64Reg(asm.R2, asm.R10),
    asm.alu64Imm(asm.ADD, asm.R2, -4),            // r2 = fp - 4: the key
    asm.ldMapFd(asm.R1, mapFd),
    asm.call(asm.helpers.map_lookup_elem),
    asm.jmpImm(asm.JEQ, asm.R0, 0, 2),
    asm.mov64Imm(asm.R1, 1),
    asm.atomicAdd(asm.DW, asm.R0, asm.R1, 0),     // lock *(u64 *)r0 += 1
    asm.mov64Imm(asm.R0, 0),                      // the socket itself gets nothing
    asm.exit(),
  ];
}
