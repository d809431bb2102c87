// The partner storage contract on the embedded backend: two worker threads on the same files.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { openPartnerStorage } from "../server/webhooks/partner-storage.ts";
import { runPartnerStorageContract } from "./partner-storage-contract.ts";

runPartnerStorageContract("SQLite", {
  async open() {
    const dir = await mkdtemp(path.join(tmpdir(), "parley-partner-"));
    const handles = [await openPartnerStorage({ dataDir: dir }), await openPartnerStorage({ dataDir: dir })];
    return {
      handles,
      async cleanup() {
        for (const handle of handles) await handle.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
});
