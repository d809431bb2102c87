import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Real servers, real SQLite files and child processes: give them room, and run files in
    // separate processes so native handles (uWS, worker threads) never leak between them.
    pool: "forks",
    // Tests run the TypeScript sources, also in the `parley` processes they spawn (bin/parley.js
    // otherwise runs the compiled dist/, which may be older than the code under test).
    env: { PARLEY_RUN_SOURCE: "1" },
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
