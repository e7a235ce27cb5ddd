import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createActor, fromCallback } from 'xstate';
import { sipSessionMachine, type SipDialogCommand, type SipDialogInput } from '../../machines/sipSession.ts';
import {
  CoverageRecorder,
  formatCoverageTable,
  loadSeen,
  replayable,
  replayCommand,
  saveSeen,
} from './chartCoverage.ts';

const dir = mkdtempSync(join(tmpdir(), 'avchat-coverage-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A few real steps of the sipSession chart, its dialog a callback that rings and answers. */
function runSession(recorder: CoverageRecorder): void {
  const dialog = fromCallback<SipDialogCommand, SipDialogInput>(({ sendBack }) => {
    sendBack({ type: 'SIP.TRYING' });
    sendBack({ type: 'SIP.RINGING' });
  });
  const actor = createActor(sipSessionMachine.provide({ actors: { sipDialog: dialog } }), {
    input: { role: 'caller', target: 'sip:a@192.0.2.1' },
    inspect: recorder.inspect,
  });
  actor.start();
  actor.stop();
}

describe('the model-coverage report (chartCoverage.ts, scripts/model-coverage.ts)', () => {
  it('should merge what each file saw and ran, and table it per chart', () => {
    const a = new CoverageRecorder([sipSessionMachine]);
    runSession(a);
    saveSeen('a', a, { chart: 'sipSession', paths: 7, seed: 42 }, dir);
    saveSeen('b', new CoverageRecorder([sipSessionMachine]), { chart: 'sipSession', paths: 3 }, dir);
    // A file in the old format (the seen map alone) and the report itself are read as they should be.
    writeFileSync(join(dir, 'old.json'), JSON.stringify(a.exportSeen()));
    writeFileSync(join(dir, 'report.json'), '{"not":"a seen file"}');
    const { recorder, files, runs } = loadSeen([sipSessionMachine], dir);
    expect(files.sort()).toEqual(['a.json', 'b.json', 'old.json']);
    expect(runs.map((r) => [r.file, r.paths, r.seed])).toEqual([
      ['a.json', 7, 42],
      ['b.json', 3, undefined],
    ]);
    const [session] = recorder.report();
    expect(session.states.visited).toBeGreaterThan(2);
    expect(session.states.visited).toBeLessThan(session.states.total);
    const table = formatCoverageTable(recorder.report(), runs).split('\n');
    expect(table[0]).toMatch(/^chart\s+states\s+transitions\s+paths run\s+seed$/);
    expect(table[2]).toMatch(
      new RegExp(
        `^sipSession\\s+${session.states.visited}/${session.states.total} \\(\\d+ %\\)\\s+\\d+/\\d+ \\(\\d+ %\\)\\s+10\\s+42$`,
      ),
    );
  });

  it('should give a failing path its event sequence and a replay command that selects just that test', async () => {
    const name = "caller: SIP.REJECTED(486) → HANGUP (it's [x] $HOME)";
    const command = replayCommand('test/model/callModel.test.ts', name);
    // What the shell hands vitest as the -t pattern, and that it matches the name as vitest does (a regex
    // over "suite name test name").
    const pattern = execFileSync('bash', ['-c', `printf %s ${command.slice(command.indexOf('-t ') + 3)}`], {
      encoding: 'utf8',
    });
    expect(new RegExp(pattern).test(`model-based runs of the call chart against the real stack ${name}`)).toBe(true);
    expect(new RegExp(pattern).test('caller: SIP.REJECTED(486) → HANGUP (it is [x] $HOME)')).toBe(false);
    await expect(
      replayable('test/model/callModel.test.ts', name, async () => {
        throw new Error('no BYE came');
      }),
    ).rejects.toThrow(`no BYE came\n  path: ${name}\n  replay: ${command}`);
  });

  it('should print the table and write report.json beside the files it reads', () => {
    // The files the first test left in `dir`.
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'scripts/model-coverage.ts'], {
      cwd: join(import.meta.dirname, '../..'),
      env: { ...process.env, AVCHAT_MODEL_COVERAGE_DIR: dir },
      encoding: 'utf8',
    });
    expect(out).toMatch(/^chart\s+states\s+transitions\s+paths run\s+seed$/m);
    expect(out).toMatch(/^sipSession\s+\d+\/26 .*\s10\s+42$/m);
    expect(out).toMatch(/^call\s+0\/\d+ \(0 %\)\s+0\/\d+ \(0 %\)\s+-\s+-$/m);
    expect(out).toContain('not reached in call or sipSession (both at 100 % in a full run):');
    const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
    expect(report.charts.map((c: { chart: string }) => c.chart)).toEqual([
      'call',
      'sipSession',
      'media',
      'natProbe',
      'portMapping',
    ]);
    expect(report.runs).toHaveLength(2);
  });
});
