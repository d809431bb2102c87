// Sockets carry the principal the HTTP API resolves (server/http/principal.ts), not a second
// identity type converted from it: a person's sign-in token and an organisation's API key give
// their /ws and /yjs connections the very principal the HTTP API gets from the same credential,
// and what the socket says it acts as (auth-ok) is that principal's actor and organisation.
// Real server, real sockets, a real sign-up over HTTP.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { HTTP_PRINCIPALS, authenticateCredential } from "../server/http/principal.ts";
import type { ClientSession } from "../server/realtime/client-session.ts";
import { apiClient } from "./helpers/http-client.ts";
import { type PartnerOrg, signUpWithKey } from "./helpers/partner-orgs.ts";
import { RawClient } from "./helpers/raw-client.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { waitUntil } from "./helpers/wait.ts";

const LOOPBACK = "127.0.0.1";

let server: TestServer;
let org: PartnerOrg;
let conversation: string;

beforeAll(async () => {
  server = await startTestServer();
  const api = apiClient(server.httpUrl);
  org = await signUpWithKey(api, "sofia@sockets.example", "Sockets Ltd");
  const created = await api("POST", "/v1/conversations", { token: org.token, body: { title: "Pump 7" } });
  expect(created.status).toBe(201);
  conversation = created.body.id as string;
});

afterAll(async () => {
  await server?.cleanup();
});

/** The server's session behind a /ws connection, by the id its auth-ok named. */
function sessionById(id: string): ClientSession {
  const session = [...server.server.hub.sessions].find((s) => s.id === id);
  if (!session) throw new Error(`no session ${id}`);
  return session;
}

/** What the HTTP API resolves the credential to (the router's own path). */
function httpPrincipal(credential: string) {
  return authenticateCredential(credential, LOOPBACK, server.server.identity.principals, HTTP_PRINCIPALS);
}

describe("sockets carry the HTTP API's principal", () => {
  it("a sign-in token: the /ws session holds the same user principal, and auth-ok names its person and organisation", async () => {
    const client = await RawClient.authenticated(server.url, org.token);
    const message = await client.waitForControl("auth-ok");
    expect(message).toMatchObject({ user: org.userId, org: org.orgId });
    const session = sessionById(message.session as string);
    expect(session.principal).toEqual(await httpPrincipal(org.token));
    expect(session.principal).toMatchObject({ kind: "user", userId: org.userId, orgId: org.orgId, role: "owner" });
    client.close();
  });

  it("an API key: the /ws session holds the same apiKey principal, acting as key:<id>", async () => {
    const client = await RawClient.authenticated(server.url, org.key);
    const message = await client.waitForControl("auth-ok");
    const principal = await httpPrincipal(org.key);
    expect(principal.kind).toBe("apiKey");
    const keyId = principal.kind === "apiKey" ? principal.keyId : "";
    expect(message).toMatchObject({ user: `key:${keyId}`, org: org.orgId });
    expect(sessionById(message.session as string).principal).toEqual(principal);
    client.close();
  });

  it("a token that lists its conversations: a conversationToken principal, which the HTTP API refuses", async () => {
    const dev = await server.token({ user: "dev", org: "org-dev", conversations: { [conversation]: "writer" } });
    const client = await RawClient.authenticated(server.url, dev);
    const message = await client.waitForControl("auth-ok");
    expect(message).toMatchObject({ user: "dev", org: "org-dev" });
    expect(sessionById(message.session as string).principal).toMatchObject({ kind: "conversationToken", token: { user: "dev", org: "org-dev" } });
    await expect(httpPrincipal(dev)).rejects.toMatchObject({ message: expect.stringContaining("it opens sockets only") });
    client.close();
  });

  it("a /yjs connection with a sign-in token holds the same user principal", async () => {
    const socket = new WebSocket(`${server.yjsUrl}/${conversation}?token=${org.token}`);
    // The first sync message comes once the socket is accepted; a refusal closes it instead.
    await new Promise<void>((resolve, reject) => {
      socket.once("message", () => resolve());
      socket.once("close", (code, reason) => reject(new Error(`closed ${code} ${reason}`)));
      socket.once("error", reject);
    });
    const yjs = () => [...server.server.hub.sessions].find((s) => s.dialect === "yjs" && s.phase === "ready");
    await waitUntil(() => yjs() !== undefined);
    expect(yjs()?.principal).toEqual(await httpPrincipal(org.token));
    socket.close();
  });
});
