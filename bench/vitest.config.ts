// Tests of the benchmark suite itself (not part of `npm test`, which runs test/ only):
// `npx vitest run --config bench/vitest.config.ts`. They start real servers and processes.

import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    root: fileURLToPath(new URL("..", import.meta.url)),
    include: ["bench/test/**/*.test.ts"],
    pool: "forks",
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
