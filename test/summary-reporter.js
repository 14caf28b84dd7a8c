// mocha's spec reporter plus, at the end, the tests that were skipped (their
// titles say why) and one closing line in the plain form CI reads:
// "mocha: N passed, N failed, N skipped" (LBN_PLACE, one word, replaces
// "mocha" to say where a run happened, e.g. in a VM).
'use strict';
const Mocha = require('mocha');

class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    const skipped = [];
    runner.on(Mocha.Runner.constants.EVENT_TEST_PENDING, (t) => skipped.push(t.fullTitle()));
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      const s = runner.stats;
      const place = process.env.LBN_PLACE || 'mocha';
      if (skipped.length > 0) {
        process.stdout.write(`\nskipped on ${place}:\n${skipped.map((t) => `  - ${t}`).join('\n')}\n`);
      }
      process.stdout.write(`\n${place}: ${s.passes} passed, ${s.failures} failed, ${s.pending} skipped\n`);
    });
  }
}

module.exports = SummaryReporter;
