// The kernel's samples/bpf/sock_example, in Node: a socket filter on a raw
// socket bound to `lo` counts packets per IP protocol in an array map, and
// user space prints the TCP/UDP/ICMP counts every second.
//
//   npm run sockstat                  # restricted C: bpf/sock_example.bpf.c
//   npm run sockstat -- --insns       # hand-written instructions (asm) + BpfMap.create
//   npm run sockstat -- --help        # the options
//
// Outside this repository, import from 'libbpf-node' instead of '../ts/index.js'.
import { execFile } from 'node:child_process';
import { closeSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { BpfMap, BpfObject, BpfProgram, openRawSocket, type BpfLink } from '../ts/index.js';
import { sockExampleInsns } from './sock_example_insns.js';
import { intArg, parseTool, runTool, sleepUnlessAborted } from './tool.js';

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

const NAME = 'sockstat';
const { values } = parseTool({
  name: NAME,
  summary: 'Count packets per IP protocol on an interface with a socket filter (the kernel\'s samples/bpf/sock_example),\n' +
    'sending UDP datagrams and a ping to 127.0.0.1 every second; prints TCP/UDP/ICMP counts each second.',
  options: {
    seconds: { type: 'string', short: 's' },
    ifname: { type: 'string', short: 'i' },
    insns: { type: 'boolean' },
    quiet: { type: 'boolean', short: 'q' },
  },
  describe: {
    seconds: 'run this many seconds (default 5)',
    ifname: 'interface to bind the raw socket to (default lo)',
    insns: 'load the hand-written instructions instead of the compiled object',
    quiet: 'print only the last line',
  },
  examples: [
    ['sockstat', 'five seconds on lo, the program compiled from C'],
    ['sockstat --insns -s 2', 'two seconds, the program written instruction by instruction'],
  ],
});

async function main(signal: AbortSignal): Promise<void> {
  const seconds = intArg('--seconds', values.seconds, 5, 1);
  const ifname = values.ifname ?? 'lo';
  const filter = values.insns ? handWritten() : compiled();
  try {
    const sock = openRawSocket(ifname);
    try {
      filter.attach(sock);
      let line = '';
      for (let s = 1; s <= seconds && !signal.aborted; s++) {
        const tick = sleepUnlessAborted(1000, signal);
        await sendUdp(UDP_PER_SECOND);
        await promisify(execFile)('ping', ['-c', '1', '-W', '1', '127.0.0.1']);
        await tick;
        line = `TCP ${filter.count(IPPROTO.TCP)} UDP ${filter.count(IPPROTO.UDP)} ` +
          `ICMP ${filter.count(IPPROTO.ICMP)} packets`;
        if (!values.quiet && !signal.aborted) console.log(line);
      }
      // On Ctrl-C (or with --quiet) the last counts are printed once at the end.
      if (values.quiet || signal.aborted) console.log(line || 'TCP 0 UDP 0 ICMP 0 packets');
    } finally {
      closeSync(sock);
    }
  } finally {
    filter.close();
  }
}

runTool(NAME, main);
