import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Real servers, real SQLite files and child processes: give them room, and run files in
    // separate processes so native handles (uWS, worker threads) never leak between them.
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
