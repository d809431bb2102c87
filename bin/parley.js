#!/usr/bin/env node
// Entry point of the `parley` command: registers the TypeScript loader (the project runs from
// source) and hands over to server/cli.ts.
import { register } from "tsx/esm/api";

// argon2 hashes run on libuv's thread pool (4 threads by default) next to file I/O; give it room
// for the configured concurrent hashes. Must be set before the pool is first used.
process.env.UV_THREADPOOL_SIZE ??= "8";
register();
await import("../server/cli.ts");
