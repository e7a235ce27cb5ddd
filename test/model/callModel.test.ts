import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ENV, routerSkipReason } from '../netns/routerSkip.ts';
import { callMachine } from '../../machines/call.ts';
import { mediaMachine } from '../../machines/media.ts';
import { natProbeMachine } from '../../machines/natProbe.ts';
import { portMappingMachine } from '../../machines/portMapping.ts';
import { sipSessionMachine } from '../../machines/sipSession.ts';
import { callModelPaths } from './callPaths.ts';
import { CoverageRecorder, formatCoverage, replayable, saveSeen } from './chartCoverage.ts';
import { runPath } from './realCall.ts';

/**
 * Model-based test runs: paths generated from the call chart with xstate/graph, each run against the
 * real stack (two avchat endpoints on loopback; see realCall.ts), with the state and transition
 * coverage of every chart measured on the real actors.
 */

const coverage = new CoverageRecorder([
  callMachine,
  sipSessionMachine,
  mediaMachine,
  natProbeMachine,
  portMappingMachine,
]);
const paths = [...callModelPaths('caller', { durationMs: 2500 }), ...callModelPaths('callee', { durationMs: 2500 })];
/** MODEL_PATHS=5 runs the first five of each role (a quick look); the suite runs all. */
const limit = Number(process.env.MODEL_PATHS ?? 0);
const selected =
  limit > 0
    ? [
        ...paths.filter((p) => p.role === 'caller').slice(0, limit),
        ...paths.filter((p) => p.role === 'callee').slice(0, limit),
      ]
    : paths;

describe('model-based runs of the call chart against the real stack', () => {
  afterAll(() => {
    console.log(
      `model-based runs: ${selected.length} paths generated from the call chart (of ${paths.length}) run against two real endpoints`,
    );
    console.log(formatCoverage(coverage.report(), { missing: true }));
    saveSeen('callModel', coverage, { chart: 'call', paths: selected.length });
  });

  for (const path of selected) {
    it(path.description, async () => {
      await replayable('test/model/callModel.test.ts', path.description, async () => {
        const result = await runPath(path, coverage.inspect);
        expect(result.outcome).toBeDefined();
      });
    }, 150_000);
  }

  // The paths through MAPPING.READY need a real home router: miniupnpd in network namespaces
  // (test/netns/upnp-router.sh, under its own prefix), with both endpoints inside its LAN namespace.
  const skip = routerSkipReason();
  it.skipIf(skip !== undefined)(
    `with a real UPnP router (miniupnpd in network namespaces)${skip ? ` — skipped: ${skip}` : ''}`,
    async () => {
      const script = fileURLToPath(new URL('../netns/upnp-router.sh', import.meta.url));
      const runner = fileURLToPath(new URL('./lanModelRun.ts', import.meta.url));
      const env = { ...ENV, AVC_NETNS_PREFIX: 'avm', AVC_NETNS_STATE: '/run/avm-upnp-router' };
      const run = (command: string, args: string[], timeout: number) =>
        new Promise<string>((resolve, reject) =>
          execFile(command, args, { env, timeout, encoding: 'utf8', maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
            err
              ? reject(
                  new Error(
                    `${command} ${args.join(' ')} failed (${err.killed ? `killed after ${timeout} ms` : `exit ${err.code}`}): ${stderr}${stdout.slice(-2000)}`,
                  ),
                )
              : resolve(stdout),
          ),
        );
      const net = Object.fromEntries(
        (await run('bash', [script, 'env'], 5000))
          .trim()
          .split('\n')
          .map((l) => l.split('=')),
      ) as Record<string, string>;
      try {
        await run('bash', [script, 'up'], 60_000);
        await run('bash', [script, 'start', 'v2'], 60_000);
        const pid = readFileSync('/run/avm-upnp-router/miniupnpd.pid', 'utf8').trim();
        const out = await run(
          'ip',
          ['netns', 'exec', net.LAN_NS, process.execPath, '--import', 'tsx', runner, net.LAN_NS, net.LAN_IP, pid],
          240_000,
        );
        const report = JSON.parse(out.trim().split('\n').at(-1)!) as {
          results: Array<{ description: string; ok: boolean; error?: string; checks?: string[] }>;
          seen: Parameters<CoverageRecorder['importSeen']>[0];
        };
        coverage.importSeen(report.seen);
        for (const r of report.results)
          console.log(
            `${r.ok ? '✓' : '×'} (router) ${r.description}${r.ok ? '' : `: ${r.error}`}\n${(r.checks ?? []).map((c) => `    ${c}`).join('\n')}`,
          );
        expect(report.results.filter((r) => !r.ok)).toEqual([]);
        expect(report.results.length).toBeGreaterThan(0);
      } finally {
        await run('bash', [script, 'down'], 30_000).catch(() => {});
      }
    },
    300_000,
  );
});
