// Starts the store worker thread. Node 20 ignores loader flags in a Worker's execArgv
// (nodejs/node#47747), so `--import tsx` cannot be passed to the thread: this registers tsx
// inside it, then loads the TypeScript entry. Works the same under vitest and `node --import tsx`.

import { register } from "tsx/esm/api";

register();
await import("./worker.ts");
