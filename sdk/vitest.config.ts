import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 30_000,
    // Process tests measure time: keep one test file at a time on a 2-core machine.
    fileParallelism: false,
    reporters: ['default'],
  },
});
