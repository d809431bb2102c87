// Postgres unreachable for a while (a TCP proxy between the nodes and Postgres cuts every
// connection and refuses new ones), with real `parley serve` processes and the audit checkpointer
// ticking every second: no node exits, no write is acknowledged while Postgres is gone, writes
// are refused with a retryable code, /readyz answers 503, and everything recovers by itself.

import { afterEach, describe, expect, it } from "vitest";
import { CloseCode, ErrorCode, shouldReconnect } from "../protocol/index.ts";
import { verifyConversation } from "../server/audit/verify-conversation.ts";
import { type Cluster, startCluster } from "./helpers/cluster.ts";
import { DocClient } from "./helpers/doc-client.ts";
import { requirePostgres, requireRedis } from "./helpers/services.ts";
import { TcpProxy } from "./helpers/tcp-proxy.ts";
import { waitUntil } from "./helpers/wait.ts";

const databaseUrl = await requirePostgres();
const redisUrl = await requireRedis();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

async function status(httpUrl: string): Promise<number> {
  return (await fetch(`${httpUrl}/readyz`)).status;
}

function alive(cluster: Cluster): string[] {
  return cluster.nodes.filter((n) => n.server.process.exitCode === null && n.server.process.signalCode === null).map((n) => n.name);
}

describe.skipIf(!databaseUrl || !redisUrl)("Postgres unreachable", { timeout: 240_000 }, () => {
  it("keeps every node up, acks nothing while it is gone, refuses writes as retryable, and recovers by itself", async () => {
    if (!databaseUrl || !redisUrl) return;
    const target = new URL(databaseUrl);
    const proxy = await TcpProxy.start([Number(target.port || 5432)]);
    cleanups.push(() => proxy.close());
    const viaProxy = new URL(databaseUrl);
    viaProxy.hostname = "127.0.0.1";
    viaProxy.port = String(proxy.port);
    // The checkpointer reads Postgres every second: the loop that used to crash a node on an outage.
    const cluster = await startCluster(
      { databaseUrl, redisUrl },
      { count: 2, nodeDatabaseUrl: viaProxy.toString(), env: { PARLEY_CHECKPOINT_INTERVAL_SECONDS: "1" } },
    );
    cleanups.push(() => cluster.cleanup());
    const token = await cluster.token("ann", "helpdesk", { outage: "writer" });
    const acked: string[] = [];

    for (const outageMs of [1500, 8000]) {
      const writers = await Promise.all(cluster.nodes.map((node) => DocClient.open(node.url, token, "outage")));
      for (const writer of writers) cleanups.push(() => writer.close());
      for (const [i, writer] of writers.entries()) {
        const text = `before-${outageMs}-${i};`;
        await writer.write(text);
        acked.push(text);
      }

      proxy.cut();
      const cutAt = Date.now();
      let restoredAt = Number.POSITIVE_INFINITY;
      // Writes while Postgres is gone: each must fail (never ack) with a code that says "retry".
      const attempts = writers.map((writer, i) =>
        writer.write(`during-${outageMs}-${i};`).then(
          () => ({ ackedAt: Date.now(), error: "" }),
          (error: Error) => ({ ackedAt: 0, error: error.message }),
        ),
      );
      await Promise.all(cluster.nodes.map((node) => waitUntil(async () => (await status(node.httpUrl)) === 503, { what: `${node.name} not ready`, interval: 100 })));
      await sleep(Math.max(0, outageMs - (Date.now() - cutAt)));
      expect(alive(cluster)).toEqual(["a", "b"]);
      proxy.restore();
      restoredAt = Date.now();

      for (const outcome of await Promise.all(attempts)) {
        // Acknowledged only after Postgres came back (a commit that waited it out), or refused as retryable.
        if (outcome.ackedAt > 0) expect(outcome.ackedAt).toBeGreaterThanOrEqual(restoredAt);
        else expect(outcome.error).toMatch(new RegExp(`^${ErrorCode.StoreUnavailable}:|^socket closed \\(${CloseCode.TryAgainLater}\\)`));
      }
      for (const writer of writers) if (writer.closeCode !== null) expect(shouldReconnect(writer.closeCode)).toBe(true);
      for (const [i, outcome] of (await Promise.all(attempts)).entries()) if (outcome.ackedAt > 0) acked.push(`during-${outageMs}-${i};`);

      await Promise.all(cluster.nodes.map((node) => waitUntil(async () => (await status(node.httpUrl)) === 200, { what: `${node.name} ready again`, interval: 100 })));
      // Recovered: new connections write and are acknowledged on every node.
      for (const [i, node] of cluster.nodes.entries()) {
        const after = await DocClient.open(node.url, token, "outage");
        cleanups.push(() => after.close());
        const text = `after-${outageMs}-${i};`;
        await after.write(text);
        acked.push(text);
      }
      expect(alive(cluster)).toEqual(["a", "b"]);
    }

    // Nothing acknowledged is missing, and the chain is intact.
    const reader = await DocClient.open(cluster.nodes[0].url, token, "outage");
    cleanups.push(() => reader.close());
    for (const text of acked) expect(reader.text).toContain(text);
    const store = await cluster.store();
    expect((await verifyConversation(store, "outage", cluster.keys.auditKey)).ok).toBe(true);
    // The nodes said why they refused, and kept running.
    for (const node of cluster.nodes) expect(node.warnings.some((line) => /"level":60/.test(line))).toBe(false);
  });
});
