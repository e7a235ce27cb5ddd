import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/globalSetup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests bind fixed UDP ports on loopback; run files one at a time so they never collide.
    fileParallelism: false,
    reporters: ['default'],
  },
});
