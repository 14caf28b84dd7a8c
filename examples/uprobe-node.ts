// A uprobe on a function of the running `node` binary: libuv's uv_fs_stat,
// which every fs.stat() of this process goes through. The program counts
// the calls of this process only (the uprobe's pid), and this prints them
// per second while it stats a file at a varying rate.
//
//   npm run uprobe-node                 # 5 seconds
//   npm run uprobe-node -- --seconds 3
//
// Outside this repository, import from 'libbpf-node'.
import { statSync } from 'node:fs';
import * as path from 'node:path';
import { BpfObject } from '../ts/index.js';

async function main(): Promise<void> {
  const i = process.argv.indexOf('--seconds');
  const seconds = i >= 0 ? Number(process.argv[i + 1]) : 5;

  const obj = new BpfObject(path.join(__dirname, '..', '..', 'bpf', 'uprobe_count.bpf.o')).load();
  obj.program('count_calls').attachUprobe({ binary: process.execPath, symbol: 'uv_fs_stat', pid: process.pid });
  const calls = (): bigint => obj.bss.calls as bigint;

  let last = 0n;
  for (let s = 1; s <= seconds; s++) {
    const stats = 100 * s; // this second's fs.stat() calls: 100, 200, ...
    const end = Date.now() + 1000;
    for (let n = 0; n < stats; n++) {
      statSync(__filename);
      await new Promise((r) => setTimeout(r, Math.max(0, (end - Date.now()) / (stats - n) - 1)));
    }
    while (Date.now() < end) await new Promise((r) => setTimeout(r, end - Date.now()));
    const now = calls();
    console.log(`uv_fs_stat calls/s: ${now - last} (fs.statSync calls made: ${stats})`);
    last = now;
  }
  obj.close();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
