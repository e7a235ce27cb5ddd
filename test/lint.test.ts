import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

/** `npm run lint` (Biome: formatting at 120 columns and the recommended lint rules, biome.jsonc) is part of the suite. */
describe('npm run lint', () => {
  it('should find nothing to fix in machines/, src/, test/, scripts/ and bin/', () => {
    const run = spawnSync('npx', ['biome', 'check', '--colors=off', '.'], { encoding: 'utf8', timeout: 120_000 });
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
  });
});
