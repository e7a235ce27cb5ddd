/**
 * One coverage report over every model-based test file's runs (test/model/*.test.ts leave what the
 * real actors did in out/model-coverage/): states and transitions visited of each chart, and those
 * not reached. `npm run test:model` prints it after the runs; `npm test` too.
 */
import { callMachine } from '../machines/call.ts';
import { mediaMachine } from '../machines/media.ts';
import { natProbeMachine } from '../machines/natProbe.ts';
import { portMappingMachine } from '../machines/portMapping.ts';
import { sipSessionMachine } from '../machines/sipSession.ts';
import { formatCoverage, loadSeen } from '../test/model/chartCoverage.ts';

const { recorder, files } = loadSeen([
  callMachine,
  sipSessionMachine,
  mediaMachine,
  natProbeMachine,
  portMappingMachine,
]);
if (files.length === 0) {
  console.log('model coverage: no model-based runs recorded (run npm run test:model)');
} else {
  const report = recorder.report();
  const goal = report.filter((c) => c.chart === 'call' || c.chart === 'sipSession');
  console.log(`\nmodel-based coverage on the real stack (${files.join(', ')}):`);
  console.log(formatCoverage(goal, { missing: true }));
  console.log(formatCoverage(report.filter((c) => !goal.includes(c))));
}
