// log2 histograms as bcc/libbpf-tools print them, and the runqlat example.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { formatLog2Hist } from '../ts/index.js';
import { ROOT } from './helpers.js';

describe('log2 histograms', function () {
  it('formats like print_log2_hist(): ranges, counts, stars scaled to the largest bucket', function () {
    assert.equal(formatLog2Hist([1, 0, 4, 2], 'usecs'), [
      '     usecs               : count    distribution',
      '         0 -> 1          : 1        |**********                              |',
      '         2 -> 3          : 0        |                                        |',
      '         4 -> 7          : 4        |****************************************|',
      '         8 -> 15         : 2        |********************                    |',
      '',
    ].join('\n'));
    assert.equal(formatLog2Hist([0, 0]), '', 'nothing to show');
    assert.match(formatLog2Hist(Object.assign(new Array(40).fill(0), { 39: 3 }), 'nsecs'),
      /^ {15}nsecs {24} : count {4}distribution\n/);
    assert.equal(formatLog2Hist(new Uint32Array([0, 5]), 'msecs').split('\n')[2], '         2 -> 3          : 5        |****************************************|');
  });

  it('examples/runqlat prints a run queue latency histogram each interval', function () {
    this.timeout(20_000);
    const out = execFileSync(process.execPath, [path.join(ROOT, 'dist', 'examples', 'runqlat.js'), '0.5', '2'],
      { encoding: 'utf8' });
    const headers = out.match(/^ +usecs +: count +distribution$/gm) ?? [];
    assert.equal(headers.length, 2);
    const rows = [...out.matchAll(/^ +(\d+) -> (\d+) +: (\d+) +\|[* ]+\+?\|$/gm)];
    assert.ok(rows.some((r) => Number(r[3]) > 0), 'the scheduler ran tasks in half a second');
  });
});
