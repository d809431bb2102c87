// Fan-out delay on /metrics, with two real nodes on real Redis: the committing node observes the
// time from each commit to its delivery to its own subscribers
// (parley_fanout_local_delay_seconds), the other node the time from the publish to its delivery
// there (parley_fanout_remote_delay_seconds). Both move under a small load.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Cluster, startCluster } from "./helpers/cluster.ts";
import { DocClient } from "./helpers/doc-client.ts";
import { scrape, seriesValue } from "./helpers/metrics-scrape.ts";
import { requireClusterServices } from "./helpers/services.ts";

const services = await requireClusterServices();
const METRICS_TOKEN = "metrics-token-for-the-fan-out-0123456789";
const WRITES = 20;

let cluster: Cluster | undefined;
const clients: DocClient[] = [];

beforeAll(async () => {
  if (services) cluster = await startCluster(services, { count: 2, env: { PARLEY_METRICS_TOKEN: METRICS_TOKEN } });
});
afterAll(async () => {
  for (const client of clients) client.close();
  await cluster?.cleanup();
});

async function histogram(httpUrl: string, name: string): Promise<{ count: number; sum: number }> {
  const { text } = await scrape(`${httpUrl}/metrics`, METRICS_TOKEN);
  return { count: seriesValue(text, `${name}_count`), sum: seriesValue(text, `${name}_sum`) };
}

describe.skipIf(!services)("fan-out delay metrics", { timeout: 120_000 }, () => {
  it("measure commit to local delivery on the writing node and publish to delivery on the other", async () => {
    const c = cluster as Cluster;
    const [a, b] = c.nodes;
    const token = await c.token("ann", "helpdesk", { lag: "writer" });
    const remoteReader = await DocClient.open(b.url, token, "lag");
    const localReader = await DocClient.open(a.url, token, "lag");
    const writer = await DocClient.open(a.url, token, "lag");
    clients.push(remoteReader, localReader, writer);
    const before = { local: await histogram(a.httpUrl, "parley_fanout_local_delay_seconds"), remote: await histogram(b.httpUrl, "parley_fanout_remote_delay_seconds") };

    for (let i = 0; i < WRITES; i++) await writer.write(`${i};`);
    for (const reader of [localReader, remoteReader]) await reader.until(() => reader.text === writer.text);

    const local = await histogram(a.httpUrl, "parley_fanout_local_delay_seconds");
    const remote = await histogram(b.httpUrl, "parley_fanout_remote_delay_seconds");
    // Every update this node committed and delivered here, and every one node B got over the bus.
    expect(local.count - before.local.count).toBeGreaterThanOrEqual(WRITES);
    expect(local.sum).toBeGreaterThan(before.local.sum);
    expect(remote.count - before.remote.count).toBeGreaterThanOrEqual(WRITES);
    expect(remote.sum).toBeGreaterThanOrEqual(before.remote.sum);
    // The other direction has nothing to report: A received no remote commit, B committed none.
    expect((await histogram(a.httpUrl, "parley_fanout_remote_delay_seconds")).count).toBe(0);
    expect((await histogram(b.httpUrl, "parley_fanout_local_delay_seconds")).count).toBe(0);
  });
});
