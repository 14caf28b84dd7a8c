// The kernel's samples/bpf/sock_example, in Node: a socket filter on a raw
// socket bound to `lo` counts packets per IP protocol in an array map, and
// user space prints the TCP/UDP/ICMP counts every second.
//
//   npm run sockstat                  # restricted C: bpf/sock_example.bpf.c
//   npm run sockstat -- --insns       # hand-written instructions (asm) + BpfMap.create
//   options: --seconds N (default 5), --ifname IF (default lo), --quiet (only the last line)
//
// Outside this repository, import from 'libbpf-node' instead of '../ts/index.js'.
import { execFile } from 'node:child_process';
import { closeSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { BpfMap, BpfObject, BpfProgram, openRawSocket, type BpfLink } from '../ts/index.js';
import { sockExampleInsns } from './sock_example_insns.js';

const IPPROTO = { TCP: 6, UDP: 17, ICMP: 1 } as const;
const UDP_PER_SECOND = 5;

interface Filter {
  /** Packets counted so far for an IP protocol. */
  count(proto: number): bigint;
  attach(fd: number): BpfLink;
  close(): void;
}

// SEC("socket") program compiled by clang.
function compiled(): Filter {
  const obj = new BpfObject(path.join(__dirname, '..', '..', 'bpf', 'sock_example.bpf.o')).load();
  // __type(key, __u32) and __type(value, __u64) in BTF: lookups give bigints.
  const counts = obj.map<number, bigint>('counts');
  return {
    count: (proto) => counts.lookup(proto) ?? 0n,
    attach: (fd) => obj.program('count_packets').attachSocket(fd),
    close: () => obj.close(),
  };
}

// The same program as the kernel sample writes it, instruction by instruction.
function handWritten(): Filter {
  const counts = BpfMap.create({ type: 'array', keySize: 4, valueSize: 8, maxEntries: 256, name: 'counts' });
  const prog = BpfProgram.load({
    type: 'socket_filter',
    name: 'sock_example',
    license: 'GPL',
    insns: sockExampleInsns(counts.fd),
  });
  return {
    // A map made without BTF is raw: 8 bytes in the host's byte order.
    count: (proto) => counts.lookup(proto)?.readBigUInt64LE() ?? 0n,
    attach: (fd) => prog.attachSocket(fd),
    close: () => {
      prog.close();
      counts.close();
    },
  };
}

// UDP datagrams to a local receiver (so no ICMP port-unreachable comes
// back), resolved when all have arrived.
async function sendUdp(n: number): Promise<void> {
  const rx = createSocket('udp4');
  const tx = createSocket('udp4');
  try {
    await new Promise<void>((resolve) => rx.bind(0, '127.0.0.1', resolve));
    const port = rx.address().port;
    let got = 0;
    const all = new Promise<void>((resolve) => rx.on('message', () => ++got === n && resolve()));
    for (let i = 0; i < n; i++) tx.send(`datagram ${i}`, port, '127.0.0.1');
    await all;
  } finally {
    rx.close();
    tx.close();
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (name: string, dflt: string): string => {
    const i = args.indexOf(name);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
  };
  const seconds = Number(opt('--seconds', '5'));
  const ifname = opt('--ifname', 'lo');
  const quiet = args.includes('--quiet');

  const filter = args.includes('--insns') ? handWritten() : compiled();
  const sock = openRawSocket(ifname);
  try {
    filter.attach(sock);
    for (let s = 1; s <= seconds; s++) {
      const tick = new Promise((r) => setTimeout(r, 1000));
      await sendUdp(UDP_PER_SECOND);
      await promisify(execFile)('ping', ['-c', '1', '-W', '1', '127.0.0.1']);
      await tick;
      const line = `TCP ${filter.count(IPPROTO.TCP)} UDP ${filter.count(IPPROTO.UDP)} ` +
        `ICMP ${filter.count(IPPROTO.ICMP)} packets`;
      if (!quiet || s === seconds) console.log(line);
    }
  } finally {
    filter.close();
    closeSync(sock);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
