// Finds the real services the multi-node tests need: Postgres and Redis. When one is not running,
// its tests skip with a loud message so a laptop run still says what it did not test; in CI
// (CI=true) a missing service fails the run instead, so CI never goes green by skipping.

import { execFile } from "node:child_process";
import { connect } from "node:net";
import pg from "pg";

/** Postgres the tests use; each test works in its own schema and drops it afterwards. */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** Redis the tests use (plain TCP, redis://host:port). */
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

const PROBE_TIMEOUT_MS = 2000;

/** The Postgres URL when reachable; null (after a warning) when not; throws in CI. */
export async function requirePostgres(): Promise<string | null> {
  return decide("Postgres", "TEST_DATABASE_URL", TEST_DATABASE_URL, await probePostgres(TEST_DATABASE_URL));
}

/** The Redis URL when it answers PING; null (after a warning) when not; throws in CI. */
export async function requireRedis(): Promise<string | null> {
  return decide("Redis", "TEST_REDIS_URL", TEST_REDIS_URL, await probeRedis(TEST_REDIS_URL));
}

function decide(service: string, variable: string, url: string, problem: string | null): string | null {
  if (problem === null) return url;
  const message = `${service} is not reachable at ${redact(url)}: ${problem}`;
  if (process.env.CI === "true") throw new Error(`${message}. CI=true: tests that need ${service} must run, not skip.`);
  const bar = "!".repeat(78);
  console.warn(
    `\n${bar}\n!! SKIPPING the tests that need ${service}.\n!! ${message}\n` +
      `!! Start ${service} (or set ${variable}) to run them; in CI this is a failure.\n${bar}\n`,
  );
  return null;
}

/** Connects and runs a query; returns why that failed, or null. */
async function probePostgres(url: string): Promise<string | null> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: PROBE_TIMEOUT_MS, query_timeout: PROBE_TIMEOUT_MS });
  client.on("error", () => {});
  try {
    await client.connect();
    await client.query("SELECT 1");
    return null;
  } catch (err) {
    return err instanceof Error ? err.message || err.name : String(err);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Sends an inline PING over plain TCP; returns why no answer came, or null. A NOAUTH answer counts
 * as reachable: the server is there, and the real client authenticates with the URL's password.
 */
function probeRedis(url: string): Promise<string | null> {
  let host: string;
  let port: number;
  try {
    const parsed = new URL(url);
    host = parsed.hostname || "127.0.0.1";
    port = Number(parsed.port || 6379);
  } catch {
    return Promise.resolve(`not a redis:// URL`);
  }
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let reply = "";
    const finish = (problem: string | null) => {
      socket.destroy();
      resolve(problem);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => finish(`no answer within ${PROBE_TIMEOUT_MS} ms`));
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk) => {
      reply += chunk.toString("latin1");
      if (!reply.includes("\r\n")) return;
      finish(reply.startsWith("+PONG") || reply.startsWith("-NOAUTH") ? null : `unexpected answer ${JSON.stringify(reply.trim())}`);
    });
    socket.on("error", (err) => finish(err.message || (err as NodeJS.ErrnoException).code || "connection failed"));
    socket.on("end", () => finish("connection closed without an answer"));
  });
}

function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return url;
  }
}

/** Both services the multi-node tests need, or null (after the warnings) when either is missing; throws in CI. */
export async function requireClusterServices(): Promise<{ databaseUrl: string; redisUrl: string } | null> {
  const databaseUrl = await requirePostgres();
  const redisUrl = await requireRedis();
  return databaseUrl && redisUrl ? { databaseUrl, redisUrl } : null;
}

/** Whether Postgres and its pg_dump / psql are here for `what` (a Postgres backup test); skips loudly without pg_dump, throws in CI. */
export async function requirePostgresTools(what: string): Promise<string | null> {
  const url = await requirePostgres();
  if (!url) return null;
  const installed = await new Promise<boolean>((resolve) => execFile("pg_dump", ["--version"], (error) => resolve(!error)));
  if (installed) return url;
  if (process.env.CI === "true") throw new Error(`pg_dump is not installed: CI must run ${what}`);
  console.warn(`!! SKIPPING ${what}: pg_dump is not installed (apt-get install postgresql-client)`);
  return null;
}
