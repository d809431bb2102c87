// Deletion across nodes (real Postgres, Redis and server processes): a side deleted on one node
// takes access away on every node while the other party reads on, the destruction clears the
// shared store and directory, and the deletion ledger the nodes share reaches every node's file.

import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../protocol/index.ts";
import { DELETION_LEDGER_FILE } from "../server/lifecycle/deletion-ledger.ts";
import { startChildServer } from "./helpers/child-server.ts";
import { type Cluster, startCluster } from "./helpers/cluster.ts";
import { apiClient } from "./helpers/http-client.ts";
import { RawClient } from "./helpers/raw-client.ts";
import { requireClusterServices } from "./helpers/services.ts";
import { confirmedSignUp } from "./helpers/sign-up.ts";

const services = await requireClusterServices();
const PASSWORD = "violet-harbour-tractor-91!";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

type Account = { accessToken: string; organisation: { id: string } };

describe.skipIf(!services)("deletion across nodes", { timeout: 180_000 }, () => {
  it("a side deleted on node A leaves sockets on node B; the destruction on B clears the shared data and reaches A's ledger file", async () => {
    if (!services) return;
    const c: Cluster = await startCluster(services, { count: 2 });
    cleanups.push(() => c.cleanup());
    const [a, b] = c.nodes.map((node) => apiClient(node.httpUrl));
    const signUp = async (email: string, organisation: string) =>
      (await confirmedSignUp(a, { email, password: PASSWORD, name: email, organisation })).body as unknown as Account;
    const helpdesk = await signUp("hana@helpdesk.example", "Helpdesk");
    const supplier = await signUp("sid@supplier.example", "Supplier");
    const started = await a("POST", "/v1/conversations", {
      token: helpdesk.accessToken,
      body: { title: "Across nodes", participants: [{ organisation: supplier.organisation.id }] },
    });
    const id = started.body.id as string;
    expect((await a("POST", `/v1/conversations/${id}/messages`, { token: supplier.accessToken, body: { text: "hello" } })).status).toBe(201);

    const join = async (token: string) => {
      const socket = await RawClient.authenticated(c.nodes[1].url, token);
      socket.control({ type: "join", conversation: id });
      await socket.waitForControl("joined");
      cleanups.push(() => socket.close());
      return socket;
    };
    const supplierOnB = await join(supplier.accessToken);
    const helpdeskOnB = await join(helpdesk.accessToken);

    expect((await a("DELETE", `/v1/conversations/${id}`, { token: supplier.accessToken })).body).toMatchObject({ destroyed: false });
    expect(await supplierOnB.waitForControl("left", (m) => m.conversation === id)).toMatchObject({ code: ErrorCode.Forbidden });
    expect((await b("GET", `/v1/conversations/${id}`, { token: supplier.accessToken })).status).toBe(404);
    expect((await b("GET", `/v1/conversations/${id}/messages`, { token: helpdesk.accessToken })).body.items).toHaveLength(1);
    expect(helpdeskOnB.closeCode).toBeNull();

    expect((await b("DELETE", `/v1/conversations/${id}`, { token: helpdesk.accessToken })).body).toMatchObject({ destroyed: true });
    const store = await c.store();
    expect(await store.readEntries(id, 0, 10)).toEqual([]);
    expect((await a("GET", `/v1/conversations/${id}`, { token: helpdesk.accessToken })).status).toBe(404);
    expect(await readFile(path.join(c.nodes[1].dataDir, DELETION_LEDGER_FILE), "utf8")).toContain(id);

    // Node A destroyed nothing itself; at its next start it takes the line from the shared ledger.
    const nodeA = c.nodes[0];
    await c.kill("a");
    const url = new URL(services.databaseUrl);
    url.searchParams.set("options", `-c search_path=${c.schema}`);
    const again = await startChildServer(nodeA.dataDir, {
      DATABASE_URL: url.toString(),
      REDIS_URL: services.redisUrl,
      PARLEY_REDIS_PREFIX: `parley-test:${c.id}:`,
      PARLEY_NODE_ID: `${c.id}-a2`,
      PARLEY_KEYS_DIR: path.join(path.dirname(nodeA.dataDir), "shared", "keys"),
    });
    cleanups.push(async () => {
      again.process.kill("SIGTERM");
      await again.exited;
    });
    expect(await readFile(path.join(nodeA.dataDir, DELETION_LEDGER_FILE), "utf8")).toContain(id);
  });
});
