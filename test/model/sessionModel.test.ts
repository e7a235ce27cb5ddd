import { afterAll, describe, expect, it } from 'vitest';
import { callMachine } from '../../machines/call.ts';
import { mediaMachine } from '../../machines/media.ts';
import { sipSessionMachine } from '../../machines/sipSession.ts';
import { CoverageRecorder, formatCoverage, replayable, saveSeen } from './chartCoverage.ts';
import { runPath } from './realCall.ts';
import { sessionModelPaths, type SessionPath } from './sessionPaths.ts';

/**
 * Model-based runs of the sipSession chart: paths generated from it with xstate/graph, each run
 * against two real endpoints on loopback (realCall.ts says how each event is caused for real), with
 * the chart's coverage measured on A's real sipSession actor. The caller's paths cover the dialog
 * in depth; of the callee's, those that differ from the caller's: answering, and glare (where the
 * callee's shorter RFC 3261 back-off makes its retry go first).
 */

const glare = (p: SessionPath) => p.steps.some((s) => (s.event as { status?: number }).status === 491);
const paths = [
  ...sessionModelPaths('caller').filter((p) => !glare(p)),
  ...sessionModelPaths('callee').filter((p) => p.steps.length <= 4 || glare(p)),
  ...sessionModelPaths('autoAnswer').filter((p) => p.steps.length <= 4),
];
const limit = Number(process.env.MODEL_PATHS ?? 0);
const selected = limit > 0 ? paths.slice(0, limit) : paths;
const coverage = new CoverageRecorder([sipSessionMachine, callMachine, mediaMachine]);

describe('model-based runs of the sipSession chart against the real stack', () => {
  afterAll(() => {
    console.log(
      `model-based runs: ${selected.length} paths generated from the sipSession chart run against two real endpoints`,
    );
    console.log(formatCoverage(coverage.report(), { missing: true }));
    saveSeen('sessionModel', coverage, { chart: 'sipSession', paths: selected.length });
  });

  for (const path of selected) {
    it(path.description, async () => {
      await replayable('test/model/sessionModel.test.ts', path.description, async () => {
        const result = await runPath(path, coverage.inspect);
        expect(result.outcome).toBeDefined();
      });
    }, 150_000);
  }
});
