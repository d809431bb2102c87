// The Postgres store: the shared Store contract, plus what only a store shared by several nodes
// promises — two nodes writing one conversation at once leave one contiguous, valid chain; nodes
// starting together migrate once; and with Postgres gone, writes are refused as retryable.
// Every store here works in its own random schema, dropped afterwards.

import { randomBytes } from "node:crypto";
import { connect, createServer, type Server, type Socket } from "node:net";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import * as Y from "yjs";
import { verifyConversation } from "../server/audit/verify-conversation.ts";
import { openPostgresStore, type PostgresStore } from "../server/store/postgres/postgres-store.ts";
import { SCHEMA_VERSION } from "../server/store/schema.ts";
import type { AppendRequest, CommittedAppend } from "../server/store/store.ts";
import { StoreError } from "../server/sql/store-error.ts";
import { requirePostgres } from "./helpers/services.ts";
import { alice, appendsOf, bob, CONTRACT_AUDIT_KEY, CONTRACT_MASTER_KEYS, loadText, runStoreContract, textUpdates } from "./store-contract.ts";

const databaseUrl = await requirePostgres();

function randomSchema(): string {
  return `parley_test_${randomBytes(6).toString("hex")}`;
}

/** Runs one statement on a connection of its own (for setup, inspection and cleanup). */
async function admin<R extends pg.QueryResultRow>(url: string, sql: string, values: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(sql, values)).rows;
  } finally {
    await client.end();
  }
}

async function dropSchema(url: string, schema: string): Promise<void> {
  await admin(url, `DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

/** A port on which nothing listens (taken from the OS, then released). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function withPort(url: string, port: number): string {
  const u = new URL(url);
  u.hostname = "127.0.0.1";
  u.port = String(port);
  return u.toString();
}

/** A TCP relay in front of Postgres that a test can cut (as a network failure or a crash would) and restore. */
class CuttableLink {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();

  private constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  static async open(url: string): Promise<CuttableLink> {
    const u = new URL(url);
    const link = new CuttableLink(await freePort(), { host: u.hostname || "127.0.0.1", port: Number(u.port || 5432) });
    await link.restore();
    return link;
  }

  async restore(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.target);
      for (const [a, b] of [
        [client, upstream],
        [upstream, client],
      ]) {
        this.sockets.add(a);
        a.pipe(b);
        a.on("error", () => b.destroy());
        a.on("close", () => {
          b.destroy();
          this.sockets.delete(a);
        });
      }
    });
    await new Promise<void>((resolve) => server.listen(this.port, "127.0.0.1", resolve));
    this.server = server;
  }

  /** Stops listening and drops every open connection: afterwards nothing listens on the port. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise((resolve) => server.close(resolve));
  }
}

if (!databaseUrl) {
  describe("Postgres store", () => {
    it.skip("needs a reachable Postgres (see the warning printed above)", () => {});
  });
} else {
  const url = databaseUrl;

  runStoreContract("postgres", async () => {
    const schema = randomSchema();
    const store = await openPostgresStore({ connectionString: url, auditKey: CONTRACT_AUDIT_KEY, masterKeys: CONTRACT_MASTER_KEYS, schema, poolSize: 4 });
    return {
      store,
      cleanup: async () => {
        await store.close();
        await dropSchema(url, schema);
      },
    };
  });

  describe("Postgres store", () => {
    const schemas: string[] = [];
    const opened: PostgresStore[] = [];
    const links: CuttableLink[] = [];

    /** A node's store: its own pool, on the shared schema. */
    async function node(schema: string, connectionString = url): Promise<PostgresStore> {
      const store = await openPostgresStore({ connectionString, auditKey: CONTRACT_AUDIT_KEY, masterKeys: CONTRACT_MASTER_KEYS, schema, poolSize: 4 });
      opened.push(store);
      return store;
    }

    function freshSchema(): string {
      const schema = randomSchema();
      schemas.push(schema);
      return schema;
    }

    afterEach(async () => {
      await Promise.all(links.splice(0).map((l) => l.cut()));
      await Promise.all(opened.splice(0).map((s) => s.close()));
      for (const schema of schemas.splice(0)) await dropSchema(url, schema);
    });

    it("gives two nodes writing the same conversations at once one contiguous, valid chain each", async () => {
      const schema = freshSchema();
      const [nodeA, nodeB] = await Promise.all([node(schema), node(schema)]);
      const conversations = ["conv-shared-1", "conv-shared-2", "conv-shared-3"];
      const reference = new Map(conversations.map((c) => [c, new Y.Doc()]));

      // Each node: 40 batches of 12 appends, interleaving the three conversations; 4 in flight.
      const writer = async (store: PostgresStore, name: string) => {
        const docs = new Map(conversations.map((c) => [c, new Y.Doc()]));
        const batches: AppendRequest[][] = Array.from({ length: 40 }, (_, b) =>
          Array.from({ length: 12 }, (_, i): AppendRequest => {
            const conversation = conversations[(b + i) % conversations.length];
            const [payload] = textUpdates(docs.get(conversation)!, 1, `${name}-b${b}-i${i}`);
            Y.applyUpdate(reference.get(conversation)!, payload);
            return { conversation, kind: "update", actor: name === "A" ? alice : bob, payload };
          }),
        );
        const results: CommittedAppend[][] = [];
        let next = 0;
        const lane = async () => {
          while (next < batches.length) {
            const batch = batches[next++];
            results.push(await store.appendBatch(batch));
            // Now and then a node compacts while the other keeps appending.
            if (next % 10 === 0) await store.compact(conversations[next % conversations.length]);
          }
        };
        await Promise.all([lane(), lane(), lane(), lane()]);
        return results;
      };
      const [fromA, fromB] = await Promise.all([writer(nodeA, "A"), writer(nodeB, "B")]);

      for (const conversation of conversations) {
        const seqs: number[] = [];
        for (const committed of [...fromA, ...fromB]) {
          const mine = committed.filter((c) => c.conversation === conversation).map((c) => c.seq);
          // One batch is one transaction: its entries for a conversation sit together.
          expect(mine).toEqual(mine.map((_, i) => mine[0] + i));
          seqs.push(...mine);
        }
        expect(seqs).toHaveLength(2 * 40 * 4);
        expect(new Set(seqs).size).toBe(seqs.length);
        // Snapshot entries take seq numbers too, so the updates' seqs plus theirs are 1..head.
        const head = (await nodeA.loadDocument(conversation)).headSeq;
        const entries = await nodeB.readEntries(conversation, 0, 10_000);
        expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: head }, (_, i) => i + 1));
        expect(entries.filter((e) => e.kind === "update").map((e) => e.seq)).toEqual([...seqs].sort((x, y) => x - y));
        expect(await verifyConversation(nodeA, conversation, CONTRACT_AUDIT_KEY)).toMatchObject({ ok: true, entries: head });
        expect(await loadText(nodeB, conversation)).toBe(reference.get(conversation)!.getText("body").toString());
      }
    });

    it("lets two nodes start the same new conversations at once, in opposite orders", async () => {
      const schema = freshSchema();
      const [nodeA, nodeB] = await Promise.all([node(schema), node(schema)]);
      const payload = textUpdates(new Y.Doc(), 1)[0];
      for (let round = 0; round < 15; round++) {
        const ids = Array.from({ length: 20 }, (_, i) => `conv-r${round}-${i}`);
        const batchA = ids.map((conversation): AppendRequest => ({ conversation, kind: "update", actor: alice, payload }));
        const batchB = [...ids].reverse().map((conversation): AppendRequest => ({ conversation, kind: "update", actor: bob, payload }));
        const [a, b] = await Promise.all([nodeA.appendBatch(batchA), nodeB.appendBatch(batchB)]);
        // Whichever committed first got seq 1 in every conversation of its batch.
        const first = a[0].seq === 1 ? a : b;
        expect(first.every((c) => c.seq === 1)).toBe(true);
        expect((first === a ? b : a).every((c) => c.seq === 2)).toBe(true);
      }
      expect(await verifyConversation(nodeA, "conv-r14-7", CONTRACT_AUDIT_KEY)).toMatchObject({ ok: true, entries: 2 });
    });

    it("migrates once when several nodes start together", async () => {
      const schema = freshSchema();
      const nodes = await Promise.all(Array.from({ length: 6 }, () => node(schema)));
      const versions = await admin<{ version: number }>(url, `SELECT version FROM "${schema}".schema_version`);
      expect(versions).toEqual([{ version: SCHEMA_VERSION }]);
      // Every node sees the same tables: seq numbers continue from node to node.
      const doc = new Y.Doc();
      const seqs: number[] = [];
      for (const store of nodes) seqs.push(...(await store.appendBatch(appendsOf("conv-1", alice, textUpdates(doc, 1)))).map((c) => c.seq));
      expect(seqs).toEqual([1, 2, 3, 4, 5, 6]);
      // A node started later finds the schema current and changes nothing.
      await node(schema);
      expect(await admin(url, `SELECT version FROM "${schema}".schema_version`)).toEqual([{ version: SCHEMA_VERSION }]);
    });

    it("fails to open, as unavailable, where nothing listens", async () => {
      const started = Date.now();
      await expect(
        openPostgresStore({ connectionString: withPort(url, await freePort()), auditKey: CONTRACT_AUDIT_KEY, masterKeys: CONTRACT_MASTER_KEYS, schema: freshSchema() }),
      ).rejects.toMatchObject({ name: "StoreError", code: "unavailable" });
      expect(Date.now() - started).toBeLessThan(5000);
      await expect(openPostgresStore({ connectionString: url, auditKey: new Uint8Array(4), masterKeys: CONTRACT_MASTER_KEYS })).rejects.toMatchObject({
        code: "invalid_request",
      });
      await expect(openPostgresStore({ connectionString: url, auditKey: CONTRACT_AUDIT_KEY, masterKeys: CONTRACT_MASTER_KEYS, schema: 'x"; DROP' })).rejects.toMatchObject({
        code: "invalid_request",
      });
    });

    it("refuses writes as unavailable while Postgres is unreachable, and resumes the chain when it is back", async () => {
      const link = await CuttableLink.open(url);
      links.push(link);
      const store = await node(freshSchema(), withPort(url, link.port));
      const doc = new Y.Doc();
      await store.appendBatch(appendsOf("conv-1", alice, textUpdates(doc, 3)));
      expect(await store.ping()).toBe(true);

      await link.cut();
      const started = Date.now();
      expect(await store.ping()).toBe(false);
      const err = await store.appendBatch(appendsOf("conv-1", alice, textUpdates(doc, 1))).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreError);
      expect(err).toMatchObject({ code: "unavailable" });
      await expect(store.loadDocument("conv-1")).rejects.toMatchObject({ code: "unavailable" });
      expect(Date.now() - started).toBeLessThan(5000);

      await link.restore();
      expect(await store.ping()).toBe(true);
      expect(await store.appendBatch(appendsOf("conv-1", bob, textUpdates(doc, 1, "back")))).toMatchObject([{ seq: 4 }]);
      expect(await verifyConversation(store, "conv-1", CONTRACT_AUDIT_KEY)).toMatchObject({ ok: true, entries: 4 });
    });

    it("refuses, as unavailable and uncommitted, a batch whose connection dies mid-transaction", async () => {
      const schema = freshSchema();
      const store = await node(schema);
      const doc = new Y.Doc();
      await store.appendBatch(appendsOf("conv-1", alice, textUpdates(doc, 2)));

      // Another session holds the head, so the batch waits inside its transaction; then its
      // backend is terminated, as a Postgres restart or failover would.
      const holder = new pg.Client({ connectionString: url });
      await holder.connect();
      try {
        const [{ pid: holderPid }] = (await holder.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows;
        await holder.query("BEGIN");
        await holder.query(`SELECT 1 FROM "${schema}".conversations WHERE id = 'conv-1' FOR UPDATE`);
        const pending = store.appendBatch(appendsOf("conv-1", bob, textUpdates(doc, 1))).catch((e: unknown) => e);
        let victims: { pid: number }[] = [];
        for (let i = 0; i < 100 && victims.length === 0; i++) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          victims = await admin<{ pid: number }>(
            url,
            "SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
            [holderPid],
          );
        }
        expect(victims).toHaveLength(1);
        await admin(url, "SELECT pg_terminate_backend($1)", [victims[0].pid]);
        expect(await pending).toMatchObject({ name: "StoreError", code: "unavailable" });
      } finally {
        await holder.query("ROLLBACK");
        await holder.end();
      }
      expect((await store.loadDocument("conv-1")).headSeq).toBe(2);
      expect(await store.appendBatch(appendsOf("conv-1", bob, textUpdates(doc, 1, "retry")))).toMatchObject([{ seq: 3 }]);
      expect(await verifyConversation(store, "conv-1", CONTRACT_AUDIT_KEY)).toMatchObject({ ok: true, entries: 3 });
    });

    it("lets in-flight calls finish when closing, then refuses new ones", async () => {
      const store = await node(freshSchema());
      const pending = store.appendBatch(appendsOf("conv-1", alice, textUpdates(new Y.Doc(), 300)));
      const closed = store.close();
      await expect(pending).resolves.toHaveLength(300);
      await closed;
      await expect(store.loadDocument("conv-1")).rejects.toMatchObject({ name: "StoreError", code: "closed" });
      expect(await store.ping()).toBe(false);
    });
  });
}
