// The partner storage contract on the shared Postgres (two handles are two nodes' pools on one
// schema), plus what only several nodes need: it is what openPartnerStorage picks given a
// database URL, and exactly one node at a time holds an endpoint's delivery claim, released when
// that node's session ends. Every case works in its own random schema, dropped afterwards.

import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { claimLockKey } from "../server/webhooks/delivery-claims.ts";
import { openPartnerStorage, type PartnerStorage } from "../server/webhooks/partner-storage.ts";
import { requirePostgres } from "./helpers/services.ts";
import { runPartnerStorageContract } from "./partner-storage-contract.ts";
import { waitUntil } from "./helpers/wait.ts";

const databaseUrl = await requirePostgres();

async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

async function openNodes(url: string, count: number): Promise<{ handles: PartnerStorage[]; cleanup(): Promise<void> }> {
  const schema = `parley_partner_${randomBytes(6).toString("hex")}`;
  // Started together, as nodes of a cluster do: the migrations take turns.
  const handles = await Promise.all(Array.from({ length: count }, () => openPartnerStorage({ dataDir: "/nonexistent", databaseUrl: url, schema })));
  return {
    handles,
    async cleanup() {
      for (const handle of handles) await handle.close();
      await dropSchema(url, schema);
    },
  };
}

/** The low 32 bits of an endpoint's claim lock, as pg_locks shows them (objid). */
function claimObjid(endpointId: string): number {
  return Number(BigInt.asUintN(64, BigInt(claimLockKey(endpointId))) & 0xffffffffn);
}

if (!databaseUrl) {
  describe("Postgres partner storage", () => {
    it.skip("needs a reachable Postgres (see the warning printed above)", () => {});
  });
} else {
  const url = databaseUrl;
  runPartnerStorageContract("Postgres", { open: () => openNodes(url, 2) });

  describe("webhook delivery claims on Postgres", () => {
    let cleanup: (() => Promise<void>) | null = null;
    afterEach(async () => {
      await cleanup?.();
      cleanup = null;
    });

    it("lets exactly one node hold an endpoint, and frees it when that node goes", async () => {
      const opened = await openNodes(url, 3);
      cleanup = opened.cleanup;
      const [a, b, c] = opened.handles as [PartnerStorage, PartnerStorage, PartnerStorage];
      expect(a.shared && b.shared).toBe(true);
      const claims = await Promise.all([a, b, c].map((node) => node.claims.claim("ep-1")));
      expect(claims.filter(Boolean)).toHaveLength(1);
      const holder = [a, b, c][claims.indexOf(true)] as PartnerStorage;
      const others = [a, b, c].filter((node) => node !== holder);
      expect(await holder.claims.claim("ep-1")).toBe(true);
      expect(await others[0]?.claims.claim("ep-2")).toBe(true);

      await holder.claims.release("ep-1");
      expect(holder.claims.holds("ep-1")).toBe(false);
      expect(await others[0]?.claims.claim("ep-1")).toBe(true);
      expect(await others[1]?.claims.claim("ep-1")).toBe(false);

      // A node whose session is ended by the database gives its claims up before delivering.
      expect(await others[1]?.claims.confirm("ep-1")).toBe(false);
      expect(await others[0]?.claims.confirm("ep-1")).toBe(true);
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      try {
        const ended = await admin.query("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1", [claimObjid("ep-1")]);
        expect(ended.rowCount).toBe(1);
      } finally {
        await admin.end();
      }
      await waitUntil(async () => !(await others[0]?.claims.confirm("ep-1")), { what: "the claim ends with its session", interval: 100 });
      expect(others[0]?.claims.holds("ep-2")).toBe(false);
      expect(await others[1]?.claims.claim("ep-1")).toBe(true);
      expect(await others[0]?.claims.claim("ep-1")).toBe(false);
      expect(await others[0]?.claims.claim("ep-2")).toBe(true);

      // A node that stops (its session ends) frees what it held for the others.
      await others[0]?.claims.close();
      expect(await others[1]?.claims.claim("ep-2")).toBe(true);
    });
  });
}
