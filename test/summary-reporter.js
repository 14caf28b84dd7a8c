// mocha's spec reporter plus one closing line in the plain form CI reads:
// "mocha: N passed, N failed, N skipped" (LBN_PLACE, one word, replaces
// "mocha" to say where a run happened, e.g. in a VM).
'use strict';
const Mocha = require('mocha');

class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      const s = runner.stats;
      const place = process.env.LBN_PLACE || 'mocha';
      process.stdout.write(`\n${place}: ${s.passes} passed, ${s.failures} failed, ${s.pending} skipped\n`);
    });
  }
}

module.exports = SummaryReporter;
