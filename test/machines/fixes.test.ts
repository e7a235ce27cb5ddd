import { readdirSync, readFileSync } from 'node:fs';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { describeFix, type Fix } from '../../machines/fixes.ts';
import { fixText, problemText } from '../../src/cli/problemText.ts';

const MACHINES = new URL('../../machines/', import.meta.url);
const ALL_FIXES: Fix[] = [
  { kind: 'mapCallPorts', ports: [5060, 16384] },
  { kind: 'checkReflector' },
  { kind: 'nameProbeServer' },
  { kind: 'secondServerAddress' },
  { kind: 'otherCallPorts' },
  { kind: 'checkRouter' },
];

/** Every string and template literal's text in a TypeScript file (comments are not literals). */
function literals(file: URL): string[] {
  const source = ts.createSourceFile(file.pathname, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const out: string[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isStringLiteralLike(node) || ts.isTemplateHead(node) || ts.isTemplateMiddle(node) || ts.isTemplateTail(node))
      out.push(node.text);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

describe('charts know no CLI: a problem carries a fix code, the CLI words it', () => {
  it('should name no command-line option in any text of machines/', () => {
    const files = readdirSync(MACHINES).filter((f) => f.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(8);
    const flagged = files.flatMap((f) =>
      literals(new URL(f, MACHINES))
        .filter((text) => /(^|[\s(])--[a-z]/.test(text))
        .map((text) => `${f}: ${text}`),
    );
    expect(flagged).toEqual([]);
  });

  it('should word every fix without options for any UI, and with the option that does it in the CLI', () => {
    for (const fix of ALL_FIXES) {
      expect(describeFix(fix)).not.toMatch(/--[a-z]/);
      expect(fixText(fix)).toContain(describeFix(fix));
      expect(fixText(fix)).toMatch(/--[a-z]/);
    }
    expect(describeFix(ALL_FIXES[0]!)).toContain('forward UDP 5060, 16384');
    expect(
      problemText({ code: 'NAT_SYMMETRIC', message: 'a symmetric NAT', fix: { kind: 'mapCallPorts', ports: [5060] } }),
    ).toBe(
      'NAT_SYMMETRIC: a symmetric NAT; turn on UPnP or NAT-PMP on the router and let avchat map the call ports, or forward UDP 5060 to this host (call or listen with --upnp multicast)',
    );
    expect(problemText({ code: 'X', message: 'no fix known' }, false)).toBe('no fix known');
  });
});
