// A private Postgres cluster for tests that need the server itself, not just a database on it
// (point-in-time recovery: WAL archiving, base backups, recovery targets): initdb into a temporary
// folder, its own port and socket folder, started and stopped with pg_ctl. Postgres refuses to run
// as root, so as root every server binary runs as the `postgres` OS user (runuser) and the folders
// are handed to it. Without the binaries the tests skip loudly; with CI=true they must run.

import { execFile } from "node:child_process";
import { access, appendFile, chown, mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { freePort } from "./server.ts";

const run = promisify(execFile);
const SERVER_TOOLS = ["initdb", "pg_ctl", "pg_basebackup", "postgres"] as const;

/** Where the server binaries are and which OS user runs them (null: this process's own). */
export interface PostgresServerTools {
  bin: string;
  runAs: { name: string; uid: number; gid: number } | null;
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

/** Candidate binary folders: PARLEY_TEST_PG_BIN, pg_config's, then Debian's versioned folders, newest first. */
async function binFolders(): Promise<string[]> {
  const folders: string[] = [];
  if (process.env.PARLEY_TEST_PG_BIN) folders.push(process.env.PARLEY_TEST_PG_BIN);
  const fromConfig = await run("pg_config", ["--bindir"]).then(
    (r) => r.stdout.trim(),
    () => "",
  );
  if (fromConfig) folders.push(fromConfig);
  for (const version of [17, 16, 15, 14, 13]) folders.push(`/usr/lib/postgresql/${version}/bin`);
  return folders;
}

/** Finds the server binaries (and, as root, the `postgres` user); why not, when they are missing. */
async function findTools(): Promise<PostgresServerTools | string> {
  let bin: string | null = null;
  for (const folder of await binFolders()) {
    if ((await Promise.all(SERVER_TOOLS.map((tool) => exists(path.join(folder, tool))))).every(Boolean)) {
      bin = folder;
      break;
    }
  }
  if (!bin) return `no folder with ${SERVER_TOOLS.join(", ")} (set PARLEY_TEST_PG_BIN, or apt-get install postgresql)`;
  if (process.getuid?.() !== 0) return { bin, runAs: null };
  const ids = await run("id", ["-u", "postgres"]).then(
    async (uid) => ({ uid: Number(uid.stdout.trim()), gid: Number((await run("id", ["-g", "postgres"])).stdout.trim()) }),
    () => null,
  );
  if (!ids) return "running as root, and there is no `postgres` OS user to run the server as";
  if (!(await exists("/usr/sbin/runuser")) && !(await exists("/sbin/runuser"))) return "running as root without runuser";
  return { bin, runAs: { name: "postgres", ...ids } };
}

/** The server tools, or null after a loud warning; throws with CI=true. */
export async function requirePostgresServerTools(what: string): Promise<PostgresServerTools | null> {
  const found = await findTools();
  if (typeof found !== "string") return found;
  const message = `Postgres server binaries are not available: ${found}`;
  if (process.env.CI === "true") throw new Error(`${message}. CI=true: ${what} must run, not skip.`);
  const bar = "!".repeat(78);
  console.warn(`\n${bar}\n!! SKIPPING ${what}.\n!! ${message}\n${bar}\n`);
  return null;
}

/** Runs a server binary (as the `postgres` user when this process is root). */
export async function runServerTool(tools: PostgresServerTools, tool: string, args: string[]): Promise<string> {
  const binary = path.join(tools.bin, tool);
  const [command, argv] = tools.runAs ? ["runuser", ["-u", tools.runAs.name, "--", binary, ...args]] : [binary, args];
  try {
    return (await run(command, argv, { timeout: 180_000, maxBuffer: 16 * 1024 * 1024 })).stdout;
  } catch (error) {
    const failed = error as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${tool} ${args.join(" ")} failed: ${failed.stderr || failed.stdout || failed.message}`);
  }
}

/** A folder the server's user owns (created under `parent`). */
export async function serverFolder(tools: PostgresServerTools, parent: string, name: string): Promise<string> {
  const folder = path.join(parent, name);
  await mkdir(folder, { recursive: true, mode: 0o700 });
  if (tools.runAs) await chown(folder, tools.runAs.uid, tools.runAs.gid);
  return folder;
}

/** A private folder for one test's clusters, traversable by the server's user. */
export async function privateWorkFolder(tools: PostgresServerTools, prefix: string): Promise<string> {
  const work = await mkdtemp(path.join(tmpdir(), prefix));
  if (tools.runAs) await chown(work, tools.runAs.uid, tools.runAs.gid);
  return work;
}

/** One cluster on its own port, its socket in its data folder's parent. */
export class PrivateCluster {
  private constructor(
    private readonly tools: PostgresServerTools,
    readonly dataDir: string,
    readonly port: number,
  ) {}

  /** initdb (trust auth, superuser `postgres`) with `settings` appended to postgresql.conf. */
  static async create(tools: PostgresServerTools, work: string, name: string, settings: Record<string, string>): Promise<PrivateCluster> {
    const dataDir = path.join(work, name);
    await runServerTool(tools, "initdb", ["-D", dataDir, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-sync"]);
    return PrivateCluster.onDataDir(tools, work, dataDir, settings);
  }

  /** A cluster on an existing data folder (a restored base backup), with `settings` appended (the last of a setting wins). */
  static async onDataDir(tools: PostgresServerTools, work: string, dataDir: string, settings: Record<string, string>): Promise<PrivateCluster> {
    const port = await freePort();
    const lines = { port: String(port), listen_addresses: "'127.0.0.1'", unix_socket_directories: `'${work}'`, ...settings };
    await appendFile(path.join(dataDir, "postgresql.conf"), `\n${Object.entries(lines).map(([k, v]) => `${k} = ${v}`).join("\n")}\n`);
    return new PrivateCluster(tools, dataDir, port);
  }

  /** An empty file the server's user owns (recovery.signal). */
  async touch(name: string): Promise<void> {
    const file = path.join(this.dataDir, name);
    await writeFile(file, "");
    if (this.tools.runAs) await chown(file, this.tools.runAs.uid, this.tools.runAs.gid);
  }

  async start(): Promise<void> {
    await runServerTool(this.tools, "pg_ctl", ["-D", this.dataDir, "-l", `${this.dataDir}.log`, "-w", "-t", "120", "start"]);
  }

  async stop(): Promise<void> {
    await runServerTool(this.tools, "pg_ctl", ["-D", this.dataDir, "-m", "fast", "-w", "-t", "120", "stop"]);
  }

  /** Stops it if it runs (clean-up). */
  async stopQuietly(): Promise<void> {
    await this.stop().catch(() => undefined);
  }

  /** A connection URL as the superuser, Parley's tables in `schema`. */
  url(schema?: string, database = "postgres"): string {
    const url = new URL(`postgres://postgres@127.0.0.1:${this.port}/${database}`);
    if (schema) url.searchParams.set("options", `-c search_path=${schema}`);
    return url.toString();
  }
}
