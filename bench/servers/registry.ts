// The servers under test: how each one is started fresh (its own process, its own data
// directory) and what its clients present to get in.

import { existsSync, rmSync } from "node:fs";
import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadOrCreateKeys } from "../../server/crypto/keys.ts";
import { mintToken } from "../../server/auth/tokens.ts";
import { loadConfig } from "../../server/platform/config.ts";
import type { ServerName } from "../clients/index.ts";
import type { ClientAuth } from "../clients/protocol-client.ts";
import { ONE_ADDRESS_FOR_ALL_CLIENTS } from "./bench-limits.ts";
import { freePort } from "./free-port.ts";
import { launchServer, type RunningServer } from "./launch.ts";
import { ensureParleyBuild, parleyEntry } from "./parley-build.ts";
import { mintParleyToken } from "./parley-token.ts";
import { systemClock } from "../../server/platform/clock.ts";

export const REPO_ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const GUARD = join(REPO_ROOT, "bench/servers/guard.mjs");
// --expose-gc lets the guard collect garbage on SIGUSR2 before a memory measurement.
export const PRELOAD = ["--expose-gc", "--import", "tsx", "--import", GUARD];
/** Parley's preload: the guard only (it runs compiled, see parley-build.ts; the sources bring tsx themselves). */
export const PARLEY_PRELOAD = ["--expose-gc", "--import", GUARD];

/** A started server. */
export interface ServerUnderTest extends RunningServer {
  name: ServerName;
  /** Parley's data directory (its outbox holds the mail it sends, e.g. sign-up links). */
  dataDir?: string;
}

/** Why a server cannot be benchmarked right now, or undefined when it can. */
export function unavailable(name: ServerName): string | undefined {
  if (name === "parley" && !existsSync(join(REPO_ROOT, "server/cli.ts"))) return "server/cli.ts does not exist yet";
  return undefined;
}

let template: Promise<string> | undefined;
const tokens = new Map<string, Promise<Record<string, string>>>();

/** A data directory holding only Parley's signing keys (the token command creates them). */
function keyTemplate(): Promise<string> {
  template ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), "parley-bench-keys-"));
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
    await mintParleyToken(REPO_ROOT, dir, ["room-0"]);
    return dir;
  })();
  template.catch(() => {
    template = undefined;
  });
  return template;
}

/** The key directory every Parley node of a run shares (PARLEY_KEYS_DIR): clientAuth's tokens verify there. */
export async function parleyKeysDir(): Promise<string> {
  return join(await keyTemplate(), "keys");
}

/** What a client of `name` presents to use `rooms` (a Parley token; nothing for the others). */
export async function clientAuth(name: ServerName, rooms: string[]): Promise<ClientAuth> {
  return name === "parley" ? { tokensByRoom: await parleyTokens(rooms) } : {};
}

/**
 * One token per room, each covering only its room: what a host application would hand a
 * browser for the conversation it opens. (One token listing every room of the run made each
 * Parley connection carry a grant table for all of them, which the idle-memory figure counted.)
 */
function parleyTokens(rooms: string[]): Promise<Record<string, string>> {
  const key = rooms.join(",");
  let minted = tokens.get(key);
  if (!minted) {
    minted = (async () => {
      const dir = await keyTemplate();
      const keys = await loadOrCreateKeys(join(dir, "keys"));
      const settings = loadConfig({ PARLEY_DATA_DIR: dir }).tokens;
      const entries = await Promise.all(
        rooms.map(async (room) => [room, await mintToken(keys, settings, { user: "bench-user", org: "bench-org", conversations: { [room]: "writer" }, ttlSeconds: 3600 }, systemClock)] as const),
      );
      return Object.fromEntries(entries);
    })();
    tokens.set(key, minted);
    minted.catch(() => tokens.delete(key));
  }
  return minted;
}

/** Starts a fresh instance of `name` on 127.0.0.1 (clients get in with clientAuth()). */
export async function startServer(name: ServerName, niceness = 0): Promise<ServerUnderTest> {
  if (name !== "parley") {
    const running = await launchServer({
      name,
      nodeArgs: [...PRELOAD, join(REPO_ROOT, `bench/servers/${name}.ts`)],
      env: { HOST: "127.0.0.1", PORT: "0" },
      cwd: REPO_ROOT,
      niceness,
    });
    return { ...running, name };
  }
  // Every instance gets a fresh data directory holding a copy of one set of keys, so a token
  // minted once per room set is valid for all of them.
  await ensureParleyBuild(REPO_ROOT);
  const dataDir = await mkdtemp(join(tmpdir(), "parley-bench-"));
  try {
    await cp(await keyTemplate(), dataDir, { recursive: true });
    const running = await launchServer({
      name,
      nodeArgs: [...PARLEY_PRELOAD, ...cpuProfileArgs(), ...parleyEntry(REPO_ROOT), "serve"],
      // Default settings (log level info: the "listening" line is an info log).
      env: { HOST: "127.0.0.1", PORT: String(await freePort()), PARLEY_DATA_DIR: dataDir, ...ONE_ADDRESS_FOR_ALL_CLIENTS },
      cwd: REPO_ROOT,
      niceness,
      // A profile is written only at a graceful exit, which first commits the backlog left queued.
      stopGraceMs: process.env.BENCH_CPU_PROF_DIR ? 120_000 : undefined,
    });
    return {
      ...running,
      name,
      dataDir,
      stop: async () => {
        await running.stop();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * BENCH_CPU_PROF_DIR=<dir>: Parley runs under `node --cpu-prof`, one .cpuprofile per instance
 * written at its (graceful) stop, to see where the hot path spends its time. Node refuses
 * --cpu-prof in NODE_OPTIONS, hence this switch.
 */
function cpuProfileArgs(): string[] {
  const dir = process.env.BENCH_CPU_PROF_DIR;
  return dir ? ["--cpu-prof", `--cpu-prof-dir=${dir}`] : [];
}
