// What an operator watches: GET /metrics in the Prometheus text format (behind a token on the
// main port, without one on a separate address), socket lifecycle and HTTP lines in the logs with
// request id, user and organisation, and no e-mail address, password, token or secret in any log
// line of a real journey (sign-up, failed and good sign-in, refresh, invitation, API key, both
// socket routes). Hashes in JSON answers are hex.

import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import * as Y from "yjs";
import { PROTOCOL_VERSION } from "../protocol/index.ts";
import { apiClient } from "./helpers/http-client.ts";
import { scrape, seriesValue as value } from "./helpers/metrics-scrape.ts";
import { RawClient } from "./helpers/raw-client.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { confirmedSignUp, TEST_PASSWORD } from "./helpers/sign-up.ts";

const METRICS_TOKEN = "metrics-token-for-the-test-0123456789";
const OWNER_EMAIL = "ann.owner@helpdesk.example";
const SUPPLIER_EMAIL = "sam.supplier@supplier.example";

let server: TestServer;
let api: ReturnType<typeof apiClient>;
const lines: string[] = [];
/** Every credential and address the journey handled: none may appear in a log line. */
const secrets: string[] = [OWNER_EMAIL, SUPPLIER_EMAIL, TEST_PASSWORD, METRICS_TOKEN];
let conversation = "";

function logged(): Record<string, unknown>[] {
  return lines.map((line) => JSON.parse(line) as Record<string, unknown>);
}

async function invitationPath(dataDir: string): Promise<string> {
  const outbox = path.join(dataDir, "outbox");
  let mail = "";
  await vi.waitFor(async () => {
    for (const file of await readdir(outbox)) {
      const text = (await readFile(path.join(outbox, file), "utf8")).replace(/=\r?\n/g, "");
      if (text.includes("/invite/")) mail = text;
    }
    expect(mail).not.toBe("");
  });
  const match = /\/invite\/([A-Za-z0-9_-]+)/.exec(mail);
  if (!match) throw new Error("no invitation link");
  secrets.push(match[1]);
  return `/invite/${match[1]}`;
}

beforeAll(async () => {
  server = await startTestServer({
    env: { PARLEY_PASSWORD_MIN_SCORE: "0", PARLEY_METRICS_TOKEN: METRICS_TOKEN, PARLEY_METRICS_ADDRESS: "127.0.0.1:0" },
    logLines: (line) => lines.push(line),
  });
  api = apiClient(server.httpUrl);

  // The journey.
  const signup = await confirmedSignUp(api, { email: OWNER_EMAIL, password: TEST_PASSWORD, name: "Ann", organisation: "Helpdesk" });
  expect(signup.status).toBe(201);
  const orgId = (signup.body.organisation as { id: string }).id;
  secrets.push(signup.body.accessToken as string, signup.body.refreshToken as string);
  const wrong = await api("POST", "/v1/auth/login", { body: { email: OWNER_EMAIL, password: `${TEST_PASSWORD}x` } });
  expect(wrong.status).toBe(401);
  const login = await api("POST", "/v1/auth/login", { body: { email: OWNER_EMAIL, password: TEST_PASSWORD } });
  expect(login.status).toBe(200);
  secrets.push(login.body.accessToken as string, login.body.refreshToken as string);
  const refreshed = await api("POST", "/v1/auth/refresh", { body: { refreshToken: login.body.refreshToken } });
  expect(refreshed.status).toBe(200);
  const token = refreshed.body.accessToken as string;
  secrets.push(token, refreshed.body.refreshToken as string);

  const created = await api("POST", "/v1/conversations", { token, body: { title: "Boiler", invitations: [{ email: SUPPLIER_EMAIL }] } });
  expect(created.status).toBe(201);
  conversation = created.body.id as string;
  const accepted = await api("POST", await invitationPath(server.dataDir), { body: {} });
  expect(accepted.status).toBe(200);
  const supplierToken = accepted.body.accessToken as string;
  secrets.push(supplierToken, accepted.body.refreshToken as string, accepted.body.deviceToken as string);

  const key = await api("POST", `/v1/organisations/${orgId}/api-keys`, { token, body: { name: "ticketing", scopes: ["conversations:write"] } });
  expect(key.status).toBe(201);
  const apiKey = key.body.key as string;
  secrets.push(apiKey, apiKey.split(".")[1]);
  expect((await api("GET", "/v1/conversations", { token: apiKey })).status).toBe(200);

  // A socket: auth, join, a write (acked), leave, close.
  const socket = await RawClient.authenticated(server.url, token);
  socket.control({ type: "join", conversation });
  await socket.waitForControl("joined");
  const doc = new Y.Doc();
  doc.getText("notes").insert(0, "hello");
  socket.doc(conversation, { type: "update", update: Y.encodeStateAsUpdate(doc) });
  await socket.waitForControl("ack");
  socket.control({ type: "leave", conversation });
  await socket.waitForControl("left");
  socket.close();
  await vi.waitFor(() => expect(logged().some((l) => l.msg === "socket closed")).toBe(true));

  // A refused socket: a bad token.
  const refused = await RawClient.connect(server.url);
  refused.control({ type: "auth", token: "not-a-token", protocol: PROTOCOL_VERSION });
  await refused.closed();

  // y-websocket, as the supplier.
  const yjs = new WebSocket(`${server.yjsUrl}/${conversation}?token=${supplierToken}`);
  await new Promise((resolve, reject) => {
    yjs.once("message", resolve);
    yjs.once("close", (code) => reject(new Error(`the y-websocket socket closed (${code}) before its first message`)));
  });
  yjs.close();
  await vi.waitFor(() => expect(logged().some((l) => l.msg === "y-websocket closed")).toBe(true));
});
afterAll(async () => {
  await server.cleanup();
});

describe("logs of a real journey", () => {
  it("hold no e-mail address, password, token, key or invitation secret", () => {
    expect(lines.length).toBeGreaterThan(10);
    for (const secret of secrets) {
      expect(secret.length).toBeGreaterThan(5);
      const leaking = lines.filter((line) => line.includes(secret));
      expect(leaking, `a log line contains ${secret.slice(0, 12)}…`).toEqual([]);
    }
  });

  it("record the socket lifecycle at info level: open, auth, join, leave, close with its code", () => {
    const messages = logged().filter((l) => l.level === 30);
    const of = (msg: string) => messages.filter((l) => l.msg === msg);
    expect(of("socket opened").length).toBeGreaterThanOrEqual(2);
    expect(of("socket authenticated")[0]).toMatchObject({ user: expect.stringMatching(/^usr_/), org: expect.stringMatching(/^org_/), session: expect.any(String) });
    expect(of("socket joined")[0]).toMatchObject({ conversation, role: "writer" });
    expect(of("socket left")[0]).toMatchObject({ conversation });
    expect(of("socket closed").some((l) => l.closeCode === 1005 || l.closeCode === 1000)).toBe(true);
    expect(of("authentication failed")[0]).toMatchObject({ code: expect.any(Number) });
    expect(of("socket closed").some((l) => l.closeCode === 4401)).toBe(true);
    expect(of("y-websocket authenticated")[0]).toMatchObject({ conversation, role: "writer" }); // an invited person writes
    expect(of("y-websocket closed")[0]).toMatchObject({ conversation, closeCode: expect.any(Number) });
  });

  it("give every HTTP line its request id, and the user and organisation once known", () => {
    const http = logged().filter((l) => l.msg === "http");
    expect(http.length).toBeGreaterThan(5);
    for (const line of http) expect(line).toMatchObject({ requestId: expect.any(String), method: expect.any(String), route: expect.any(String), status: expect.any(Number) });
    expect(http.find((l) => l.route === "/v1/conversations" && l.method === "POST")).toMatchObject({ user: expect.stringMatching(/^usr_/), org: expect.stringMatching(/^org_/) });
    expect(http.find((l) => l.route === "/v1/conversations" && l.method === "GET")).toMatchObject({ user: expect.stringMatching(/^key:key_/) });
    expect(http.find((l) => l.route === "/v1/auth/login" && l.status === 401)).toMatchObject({ code: 2005 });
  });
});

describe("GET /metrics", () => {
  it("needs the token on the main port", async () => {
    expect((await scrape(`${server.httpUrl}/metrics`)).status).toBe(401);
    expect((await scrape(`${server.httpUrl}/metrics`, "wrong-token-wrong-token-wrong")).status).toBe(401);
    expect((await scrape(`${server.httpUrl}/metrics`, METRICS_TOKEN)).status).toBe(200);
  });

  it("reports the journey in the Prometheus text format", async () => {
    const { status, type, text } = await scrape(`${server.httpUrl}/metrics`, METRICS_TOKEN);
    expect(status).toBe(200);
    expect(type).toContain("text/plain");
    for (const line of text.split("\n")) {
      if (line === "" || line.startsWith("# HELP ") || line.startsWith("# TYPE ")) continue;
      // Values as Go's ParseFloat reads them (prom-client writes NaN as "Nan").
      expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? (-?[0-9.e+-]+|nan|[+-]inf)$/i);
    }
    expect(value(text, 'parley_frames_received_total{dialect="parley"}')).toBeGreaterThanOrEqual(4);
    expect(value(text, 'parley_frames_sent_total{dialect="parley"}')).toBeGreaterThanOrEqual(4);
    expect(value(text, 'parley_frames_sent_total{dialect="yjs"}')).toBeGreaterThanOrEqual(1);
    expect(value(text, 'parley_commits_total{outcome="committed"}')).toBeGreaterThanOrEqual(1);
    expect(value(text, "parley_committed_updates_total")).toBeGreaterThanOrEqual(1);
    expect(value(text, "parley_commit_duration_seconds_count")).toBeGreaterThanOrEqual(1);
    expect(value(text, "parley_group_commit_batch_size_count")).toBeGreaterThanOrEqual(1);
    expect(value(text, "parley_fanout_lag_seconds_count")).toBeGreaterThanOrEqual(1);
    expect(value(text, 'parley_sign_in_failures_total{reason="2005"}')).toBe(1);
    expect(value(text, 'parley_connections{dialect="parley"}')).toBe(0);
    expect(value(text, "parley_authenticated_sessions")).toBe(0);
    expect(value(text, "parley_open_conversations")).toBe(0);
    expect(value(text, "parley_webhook_backlog")).toBe(0);
    expect(text).toContain("parley_bus_gap_updates_recovered_total");
    expect(text).toContain("parley_store_errors_total");
    expect(text).toContain("parley_bus_errors_total");
    expect(text).toContain("parley_webhook_deliveries_total");
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds \d/m);
  });

  it("counts open connections and conversations while they are open", async () => {
    const login = await api("POST", "/v1/auth/login", { body: { email: OWNER_EMAIL, password: TEST_PASSWORD } });
    const socket = await RawClient.authenticated(server.url, login.body.accessToken as string);
    socket.control({ type: "join", conversation });
    await socket.waitForControl("joined");
    const { text } = await scrape(`${server.httpUrl}/metrics`, METRICS_TOKEN);
    expect(value(text, 'parley_connections{dialect="parley"}')).toBe(1);
    expect(value(text, "parley_authenticated_sessions")).toBe(1);
    expect(value(text, "parley_open_conversations")).toBe(1);
    socket.close();
  });

  it("is served without a token on PARLEY_METRICS_ADDRESS", async () => {
    const port = server.server.metricsPort;
    expect(port).not.toBeNull();
    const { status, text } = await scrape(`http://127.0.0.1:${port}/metrics`);
    expect(status).toBe(200);
    expect(text).toContain("parley_commits_total");
    expect((await scrape(`http://127.0.0.1:${port}/other`)).status).toBe(404);
  });
});

describe("JSON answers", () => {
  it("serialise hashes as hex (audit verify)", async () => {
    const login = await api("POST", "/v1/auth/login", { body: { email: OWNER_EMAIL, password: TEST_PASSWORD } });
    const verify = await api("GET", `/v1/conversations/${conversation}/audit/verify`, { token: login.body.accessToken as string });
    expect(verify.status).toBe(200);
    expect(verify.body).toMatchObject({ ok: true, head: { hash: expect.stringMatching(/^[0-9a-f]{64}$/) } });
  });
});
