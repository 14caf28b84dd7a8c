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
import { intArg, parseTool, runTool, sleepUnlessAborted } from './tool.js';

const NAME = 'uprobe-node';
const { values } = parseTool({
  name: NAME,
  summary: 'Count calls of libuv\'s uv_fs_stat in this node process with a uprobe, while it calls fs.statSync()\n' +
    '100, 200, 300, ... times a second; prints the calls seen each second and a total at the end (or at Ctrl-C).',
  options: { seconds: { type: 'string', short: 's' } },
  describe: { seconds: 'run this many seconds (default 5)' },
  examples: [['uprobe-node -s 3', 'three seconds']],
});

async function main(signal: AbortSignal): Promise<void> {
  const seconds = intArg('--seconds', values.seconds, 5, 1);
  const obj = new BpfObject(path.join(__dirname, '..', '..', 'bpf', 'uprobe_count.bpf.o')).load();
  try {
    obj.program('count_calls').attachUprobe({ binary: process.execPath, symbol: 'uv_fs_stat', pid: process.pid });
    const calls = (): bigint => obj.bss.calls as bigint;
    let last = 0n;
    let made = 0;
    for (let s = 1; s <= seconds && !signal.aborted; s++) {
      const stats = 100 * s; // this second's fs.stat() calls: 100, 200, ...
      const end = Date.now() + 1000;
      for (let n = 0; n < stats && !signal.aborted; n++, made++) {
        statSync(__filename);
        await sleepUnlessAborted(Math.max(0, (end - Date.now()) / (stats - n) - 1), signal);
      }
      await sleepUnlessAborted(Math.max(0, end - Date.now()), signal);
      if (signal.aborted) break;
      const now = calls();
      console.log(`uv_fs_stat calls/s: ${now - last} (fs.statSync calls made: ${stats})`);
      last = now;
    }
    console.log(`total: ${calls()} uv_fs_stat calls seen, ${made} fs.statSync calls made`);
  } finally {
    obj.close();
  }
}

runTool(NAME, main);
