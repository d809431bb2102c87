// Access across nodes: the directory is shared (Postgres), so an account made on one node signs
// in on another, and a revocation on one node closes the affected sockets on every node.

import { afterEach, describe, expect, it } from "vitest";
import { CloseCode, ErrorCode } from "../protocol/index.ts";
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

describe.skipIf(!services)("access across nodes", { timeout: 120_000 }, () => {
  it("signs in on one node with an account made on another, and a sign-out on A closes the socket on B", async () => {
    if (!services) return;
    const c: Cluster = await startCluster(services, { count: 2 });
    cleanups.push(() => c.cleanup());
    const [a, b] = c.nodes.map((node) => apiClient(node.httpUrl));
    const signUp = await confirmedSignUp(a, { email: "nina@nodes.example", password: PASSWORD, name: "Nina", organisation: "Nodes" });
    expect(signUp.status).toBe(201);
    const login = await b("POST", "/v1/auth/login", { body: { email: "nina@nodes.example", password: PASSWORD } });
    expect(login.status).toBe(200);
    const token = login.body.accessToken as string;
    const created = await b("POST", "/v1/conversations", { token, body: { title: "Across nodes" } });
    expect((await a("GET", `/v1/conversations/${created.body.id}`, { token })).status).toBe(200);

    const onB = await RawClient.authenticated(c.nodes[1].url, token);
    onB.control({ type: "join", conversation: created.body.id as string });
    await onB.waitForControl("joined");
    expect((await a("POST", "/v1/auth/logout", { token, body: {} })).status).toBe(204);
    expect(await onB.closed(3000)).toBe(CloseCode.Forbidden);
    // A refresh token of the signed-out session fails on either node.
    const refreshed = await b("POST", "/v1/auth/refresh", { body: { refreshToken: login.body.refreshToken } });
    expect(refreshed.body.error?.code).toBe(ErrorCode.InvalidRefreshToken);
  });
});
