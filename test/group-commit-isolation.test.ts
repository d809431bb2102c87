// One bad append fails alone: a group commit that the store refuses because of one request
// (here an append to a destroyed conversation) still commits everyone else's updates, in order,
// on the real SQLite store and, when it is running, the real Postgres store.

import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import * as Y from "yjs";
import { GroupCommitter } from "../server/writes/group-committer.ts";
import { openPostgresStore } from "../server/store/postgres/postgres-store.ts";
import { openSqliteStore } from "../server/store/sqlite/sqlite-store.ts";
import type { Store } from "../server/store/store.ts";
import { StoreError } from "../server/sql/store-error.ts";
import { requirePostgres } from "./helpers/services.ts";
import { alice, appendsOf, bob, CONTRACT_AUDIT_KEY, CONTRACT_MASTER_KEYS, loadText, textUpdates } from "./store-contract.ts";

const databaseUrl = await requirePostgres();

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function sqlite(): Promise<Store> {
  const dir = await mkdtemp(join(tmpdir(), "parley-isolation-"));
  const store = await openSqliteStore({ path: join(dir, "parley.db"), auditKey: CONTRACT_AUDIT_KEY, masterKeys: CONTRACT_MASTER_KEYS });
  cleanups.push(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  return store;
}

async function postgres(): Promise<Store> {
  if (!databaseUrl) throw new Error("unreachable: skipped without Postgres");
  const schema = `parley_test_${randomBytes(6).toString("hex")}`;
  const store = await openPostgresStore({ connectionString: databaseUrl, auditKey: CONTRACT_AUDIT_KEY, masterKeys: CONTRACT_MASTER_KEYS, schema });
  cleanups.push(async () => {
    await store.close();
    const { default: pg } = await import("pg");
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await client.end();
  });
  return store;
}

const backends: [string, () => Promise<Store>, boolean][] = [
  ["sqlite", sqlite, true],
  ["postgres", postgres, databaseUrl !== null],
];

for (const [name, open, available] of backends) {
  describe.skipIf(!available)(`group commit on ${name}`, () => {
    it("commits every other append of a batch when one of them is refused", async () => {
      const store = await open();
      await store.appendBatch(appendsOf("gone", alice, textUpdates(new Y.Doc(), 1)));
      await store.destroyConversation("gone");
      // A long window: every append below is queued before the batch is committed, so they share it.
      const committer = new GroupCommitter(store, { maxBatch: 64, windowMs: 50 });
      const docA = new Y.Doc();
      const docB = new Y.Doc();
      const a = appendsOf("conv-a", alice, textUpdates(docA, 5, "a"));
      const b = appendsOf("conv-b", bob, textUpdates(docB, 5, "b"));
      const bad = appendsOf("gone", bob, textUpdates(new Y.Doc(), 1))[0];
      const results = await Promise.allSettled([...a.slice(0, 3), b[0], bad, ...b.slice(1), ...a.slice(3)].map((r) => committer.append(r)));
      const refused = results.filter((r) => r.status === "rejected");
      expect(refused).toHaveLength(1);
      expect((refused[0] as PromiseRejectedResult).reason).toBeInstanceOf(StoreError);
      expect(results[4].status).toBe("rejected");
      const seqsOf = (conversation: string) =>
        results.flatMap((r) => (r.status === "fulfilled" && r.value.conversation === conversation ? [r.value.seq] : []));
      // Everyone else's appends committed, each conversation's in arrival order.
      expect(seqsOf("conv-a")).toEqual([1, 2, 3, 4, 5]);
      expect(seqsOf("conv-b")).toEqual([1, 2, 3, 4, 5]);
      expect(await loadText(store, "conv-a")).toBe(docA.getText("body").toString());
      expect(await loadText(store, "conv-b")).toBe(docB.getText("body").toString());
      await committer.flush();
    });

    it("still refuses the whole batch, without retrying, when the store itself is gone", async () => {
      const store = await open();
      const committer = new GroupCommitter(store, { maxBatch: 64, windowMs: 50 });
      const pending = appendsOf("conv-a", alice, textUpdates(new Y.Doc(), 4)).map((r) => committer.append(r));
      // Observed before the close: the commit may fail while close() is still under way.
      const settled = Promise.allSettled(pending);
      await store.close();
      const results = await settled;
      expect(results.every((r) => r.status === "rejected" && (r.reason as StoreError).code === "closed")).toBe(true);
    });
  });
}
