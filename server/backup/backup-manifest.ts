// The manifest at the head of a backup's payload: what the backup holds and how to check each
// piece. The payload is: manifest length (u32 BE) ‖ manifest JSON ‖ each database's bytes, in the
// manifest's order. Validated with zod on the way in: a manifest is input like any other.

import { readFile } from "node:fs/promises";
import { z } from "zod";
import { BACKUP_FORMAT_VERSION, BackupError } from "./backup-file.ts";
import { EMBEDDED_DATABASES, embeddedDatabase, supportedSchemaVersion } from "./embedded-databases.ts";

const MAX_MANIFEST_BYTES = 64 * 1024;

const databaseEntry = z.object({
  name: z.enum(EMBEDDED_DATABASES.map((d) => d.name) as [string, ...string[]]),
  schemaVersion: z.number().int().min(0),
  size: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

const manifestSchema = z.object({
  format: z.literal(BACKUP_FORMAT_VERSION),
  createdAt: z.string(),
  parleyVersion: z.string(),
  notIncluded: z.string(),
  databases: z.array(databaseEntry).min(1).max(EMBEDDED_DATABASES.length),
});

/** What a backup file holds. */
export type BackupManifest = z.infer<typeof manifestSchema>;
/** One database in a backup. */
export type BackedUpDatabase = z.infer<typeof databaseEntry>;

/** This Parley's version (package.json), recorded in each manifest. */
export async function parleyVersion(): Promise<string> {
  // server/backup/ from source, dist/server/backup/ compiled: the root is two or three levels up.
  for (const relative of ["../../package.json", "../../../package.json"]) {
    const pkg = JSON.parse(await readFile(new URL(relative, import.meta.url), "utf8").catch(() => "{}")) as { name?: string; version?: string };
    if (pkg.name === "parley" && typeof pkg.version === "string") return pkg.version;
  }
  throw new Error("parley's package.json not found");
}

/** The manifest (of either kind of backup) as the payload's first bytes. */
export function encodeManifest(manifest: BackupManifest | object): Buffer {
  const json = Buffer.from(JSON.stringify(manifest), "utf8");
  const length = Buffer.alloc(4);
  length.writeUInt32BE(json.length);
  return Buffer.concat([length, json]);
}

/** A manifest's JSON, parsed (still to be checked by its kind's schema). */
export function parseManifestJson(json: Buffer): unknown {
  try {
    return JSON.parse(json.toString("utf8"));
  } catch {
    throw new BackupError("backup manifest is not valid JSON");
  }
}

/** Parses and checks a manifest: known databases, each once, none newer than this code reads. */
export function decodeManifest(json: Buffer): BackupManifest {
  const parsed = parseManifestJson(json);
  const result = manifestSchema.safeParse(parsed);
  if (!result.success) throw new BackupError(`backup manifest is invalid: ${result.error.issues[0]?.path.join(".")} ${result.error.issues[0]?.message}`);
  const manifest = result.data;
  const names = new Set(manifest.databases.map((d) => d.name));
  if (names.size !== manifest.databases.length) throw new BackupError("backup manifest lists a database twice");
  for (const entry of manifest.databases) {
    const supported = supportedSchemaVersion(embeddedDatabase(entry.name));
    if (supported !== null && entry.schemaVersion > supported) {
      throw new BackupError(`${entry.name} in the backup has schema version ${entry.schemaVersion}, newer than this Parley's ${supported}`);
    }
  }
  return manifest;
}

/** The largest manifest accepted (a length prefix beyond it is damage, not a manifest). */
export function checkManifestLength(length: number): void {
  if (length === 0 || length > MAX_MANIFEST_BYTES) throw new BackupError(`backup manifest length ${length} is not plausible`);
}
