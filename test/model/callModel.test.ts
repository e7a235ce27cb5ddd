import { afterAll, describe, expect, it } from 'vitest';
import { callMachine } from '../../machines/call.ts';
import { mediaMachine } from '../../machines/media.ts';
import { natProbeMachine } from '../../machines/natProbe.ts';
import { portMappingMachine } from '../../machines/portMapping.ts';
import { sipSessionMachine } from '../../machines/sipSession.ts';
import { callModelPaths } from './callPaths.ts';
import { CoverageRecorder, formatCoverage } from './chartCoverage.ts';
import { runPath } from './realCall.ts';

/**
 * Model-based test runs: paths generated from the call chart with xstate/graph, each run against the
 * real stack (two avchat endpoints on loopback; see realCall.ts), with the state and transition
 * coverage of every chart measured on the real actors.
 */

const coverage = new CoverageRecorder([callMachine, sipSessionMachine, mediaMachine, natProbeMachine, portMappingMachine]);
const paths = [...callModelPaths('caller', { durationMs: 2500 }), ...callModelPaths('callee', { durationMs: 2500 })];
/** MODEL_PATHS=5 runs the first five of each role (a quick look); the suite runs all. */
const limit = Number(process.env.MODEL_PATHS ?? 0);
const selected = limit > 0 ? [...paths.filter((p) => p.role === 'caller').slice(0, limit), ...paths.filter((p) => p.role === 'callee').slice(0, limit)] : paths;

describe('model-based runs of the call chart against the real stack', () => {
  afterAll(() => {
    console.log(`model-based runs: ${selected.length} paths generated from the call chart (of ${paths.length}) run against two real endpoints`);
    console.log(formatCoverage(coverage.report(), { missing: true }));
  });

  for (const path of selected) {
    it(path.description, async () => {
      const result = await runPath(path, coverage.inspect);
      expect(result.outcome).toBeDefined();
    }, 90_000);
  }
});
