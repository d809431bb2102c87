// The pin of a group commit's heads (a second durable write, before the acknowledgements) does not
// hold up the next transaction: the store commits the next batch while the pin is written, the
// acknowledgements still wait for their pin and go out in commit order, and pins that pile up are
// written together.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, expect, it, vi } from "vitest";
import * as Y from "yjs";
import { openSqliteStore } from "../server/store/sqlite/sqlite-store.ts";
import type { CommittedAppend } from "../server/store/store.ts";
import { GroupCommitter } from "../server/writes/group-committer.ts";
import { alice, appendsOf, CONTRACT_AUDIT_KEY, CONTRACT_MASTER_KEYS, textUpdates } from "./store-contract.ts";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

it("commits the next batch while a pin is written, and acknowledges in commit order once pinned", async () => {
  const dir = await mkdtemp(join(tmpdir(), "parley-pipeline-"));
  const store = await openSqliteStore({ path: join(dir, "parley.db"), auditKey: CONTRACT_AUDIT_KEY, masterKeys: CONTRACT_MASTER_KEYS });
  cleanups.push(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  const pins: number[][] = [];
  let release!: () => void;
  const firstPinHeld = new Promise<void>((resolve) => (release = resolve));
  const committer = new GroupCommitter(store, {
    maxBatch: 64,
    windowMs: 0,
    beforeAck: async (committed: readonly CommittedAppend[]) => {
      pins.push(committed.map((c) => c.seq));
      if (pins.length === 1) await firstPinHeld;
    },
  });
  const [first, second, third] = appendsOf("conv-a", alice, textUpdates(new Y.Doc(), 3));
  const acked: number[] = [];
  const a = committer.append(first).then((c) => acked.push(c.seq));
  await vi.waitFor(() => expect(pins).toEqual([[1]]));
  // The first pin is still being written: the next two appends commit meanwhile, one transaction each.
  const b = committer.append(second).then((c) => acked.push(c.seq));
  await vi.waitFor(() => expect(committer.stats.batches).toBe(2));
  const c = committer.append(third).then((c) => acked.push(c.seq));
  await vi.waitFor(() => expect(committer.stats.batches).toBe(3));
  expect(acked).toEqual([]);
  release();
  await Promise.all([a, b, c]);
  expect(acked).toEqual([1, 2, 3]);
  // The two pins that waited behind the first were written as one.
  expect(pins).toEqual([[1], [2, 3]]);
  await committer.flush();
});
