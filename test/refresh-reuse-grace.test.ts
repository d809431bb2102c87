// Refresh-token rotation when an answer is lost: the client sent R1, the server rotated it to R2,
// the answer never arrived, and the client retries with R1. Within the reuse grace that retry is
// answered (a fresh pair; R2, never seen by the client, is retired), once per token. Everything
// else a stolen token can do still ends the session: a replay after the grace, a replay once the
// successor was used, a second retry, the retired R2 turning up later, or a third use racing two.
// A real server on an ephemeral port with its SQLite directory; the identity clock is the test's.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "../protocol/index.ts";
import { type ApiResponse, apiClient } from "./helpers/http-client.ts";
import { RawClient } from "./helpers/raw-client.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { signUp, TEST_PASSWORD } from "./helpers/sign-up.ts";

const GRACE_SECONDS = 20;
const EMAIL = "rita@rotation.example";
let clock = Date.now();
let server: TestServer;
let api: ReturnType<typeof apiClient>;

beforeAll(async () => {
  server = await startTestServer({ env: { PARLEY_REFRESH_REUSE_GRACE_SECONDS: String(GRACE_SECONDS) }, now: () => clock });
  api = apiClient(server.httpUrl);
  await signUp(api, EMAIL, "Rotation BV");
}, 60_000);

afterAll(async () => {
  await server?.cleanup();
});

/** A fresh sign-in session: its first refresh token and access token. */
async function session(): Promise<{ refreshToken: string; accessToken: string }> {
  const login = await api("POST", "/v1/auth/login", { body: { email: EMAIL, password: TEST_PASSWORD } });
  expect(login.status).toBe(200);
  return login.body as { refreshToken: string; accessToken: string };
}

function refresh(refreshToken: string): Promise<ApiResponse> {
  return api("POST", "/v1/auth/refresh", { body: { refreshToken } });
}

async function rotated(refreshToken: string): Promise<{ refreshToken: string; accessToken: string }> {
  const answer = await refresh(refreshToken);
  expect(answer.status).toBe(200);
  return answer.body as { refreshToken: string; accessToken: string };
}

async function expectRefused(refreshToken: string) {
  const answer = await refresh(refreshToken);
  expect([answer.status, answer.body.error?.code]).toEqual([401, ErrorCode.InvalidRefreshToken]);
}

/** The session is over: its access token is refused and every token of it with it. */
async function expectSessionEnded(accessToken: string, ...refreshTokens: string[]) {
  expect((await api("GET", "/v1/me", { token: accessToken })).status).toBe(401);
  for (const token of refreshTokens) await expectRefused(token);
}

describe("a refresh retried after its answer was lost", () => {
  it("is answered within the grace with a fresh pair, and the session goes on from there", async () => {
    const first = await session();
    const lost = await rotated(first.refreshToken);
    clock += (GRACE_SECONDS - 1) * 1000;
    const retried = await rotated(first.refreshToken);
    expect(retried.refreshToken).not.toBe(lost.refreshToken);
    expect((await api("GET", "/v1/me", { token: retried.accessToken })).status).toBe(200);
    const next = await rotated(retried.refreshToken);
    expect((await api("GET", "/v1/me", { token: next.accessToken })).status).toBe(200);
  });

  it("ends the session when the lost answer's token turns up after the retry (whoever holds it is not the client)", async () => {
    const first = await session();
    const lost = await rotated(first.refreshToken);
    const retried = await rotated(first.refreshToken);
    const socket = await RawClient.authenticated(server.url, retried.accessToken);
    await expectRefused(lost.refreshToken);
    expect(await socket.closed(2000)).toBe(4403);
    await expectSessionEnded(retried.accessToken, retried.refreshToken);
  });
});

describe("a stolen refresh token replayed", () => {
  it("after the grace ends the session", async () => {
    const first = await session();
    const next = await rotated(first.refreshToken);
    clock += (GRACE_SECONDS + 1) * 1000;
    await expectRefused(first.refreshToken);
    await expectSessionEnded(next.accessToken, next.refreshToken);
  });

  it("within the grace but after its successor was used ends the session (the client had the answer)", async () => {
    const first = await session();
    const second = await rotated(first.refreshToken);
    const third = await rotated(second.refreshToken);
    await expectRefused(first.refreshToken);
    await expectSessionEnded(third.accessToken, third.refreshToken);
  });

  it("a second time within the grace ends the session: the grace is per token, and once", async () => {
    const first = await session();
    await rotated(first.refreshToken);
    const retried = await rotated(first.refreshToken);
    await expectRefused(first.refreshToken);
    await expectSessionEnded(retried.accessToken, retried.refreshToken);
  });

  it("each token of a session has its own one grace, never a second one", async () => {
    const first = await session();
    await rotated(first.refreshToken);
    const second = await rotated(first.refreshToken);
    await rotated(second.refreshToken);
    const third = await rotated(second.refreshToken);
    await expectRefused(second.refreshToken);
    await expectSessionEnded(third.accessToken, third.refreshToken);
  });

  it("at the same time as the client: both may be answered, but only one token stays live and using the other ends the session", async () => {
    const first = await session();
    const answers = await Promise.all([refresh(first.refreshToken), refresh(first.refreshToken)]);
    expect(answers.map((a) => a.status)).toEqual([200, 200]);
    const [a, b] = answers.map((answer) => answer.body as { refreshToken: string; accessToken: string });
    // Whichever is presented first, the retired one ends the session, the live one's successor with it.
    const results = [await refresh(a.refreshToken), await refresh(b.refreshToken)];
    expect(results.filter((r) => r.status === 200).length).toBeLessThanOrEqual(1);
    const last = results.find((r) => r.status === 200)?.body as { refreshToken: string; accessToken: string } | undefined;
    await expectSessionEnded(a.accessToken, ...(last ? [last.refreshToken] : []));
    await expectSessionEnded(b.accessToken);
  });

  it("three times at once: the third use is a reuse that ends the session, with whatever the other two got", async () => {
    const first = await session();
    const answers = await Promise.all([0, 1, 2].map(() => refresh(first.refreshToken)));
    expect(answers.filter((a) => a.status === 401).map((a) => a.body.error?.code)).toEqual([ErrorCode.InvalidRefreshToken]);
    for (const answer of answers.filter((a) => a.status === 200)) {
      const pair = answer.body as { refreshToken: string; accessToken: string };
      await expectSessionEnded(pair.accessToken, pair.refreshToken);
    }
  });
});
