import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/web/callPanelBundle.ts';

const out = mkdtempSync(join(tmpdir(), 'avchat-docs-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('npm run docs (typedoc over the two entry points)', () => {
  it('should generate the API reference of avchat and avchat/machines from the TSDoc comments', async () => {
    await promisify(execFile)('npx', ['typedoc', '--out', out, '--logLevel', 'Error'], {
      cwd: PROJECT_ROOT,
      timeout: 120_000,
    });
    expect(existsSync(join(out, 'index.html'))).toBe(true);
    const pages = readdirSync(out, { recursive: true }).map(String);
    const page = (name: string) => pages.find((p) => p.endsWith(`.${name}.html`));
    expect(page('openEndpoint'), 'openEndpoint page').toBeDefined();
    expect(page('callMachine'), 'callMachine page').toBeDefined();
    // The page carries the function's own TSDoc text, not just its signature.
    const doc = readFileSync(join(out, page('CallHandle')!), 'utf8');
    expect(doc).toContain('Every snapshot of the call chart');
    // Internals are not documented: they are not exported.
    expect(pages.some((p) => /checkSipMessage/.test(p))).toBe(false);
  });
});
