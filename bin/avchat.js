#!/usr/bin/env node
// The avchat command: the compiled CLI in dist/ (npm run build; npm install and npm pack run it).
// Plain Node at run time: no TypeScript toolchain.
let main;
try {
  ({ main } = await import('../dist/src/cli/main.js'));
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !String(err.message).includes('dist/src/cli/main.js')) throw err;
  process.stderr.write(
    'avchat: NOT_BUILT: dist/ is missing in this checkout; run npm run build (npm install does it)\n',
  );
  process.exit(2);
}
await main(process.argv);
