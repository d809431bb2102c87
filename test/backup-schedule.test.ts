// Backups on a schedule: the server backs itself up (encrypted, verified after writing), keeps a
// daily / weekly / monthly rotation, and runs restore drills (restore into a temporary data
// directory, SQLite integrity, row counts against the snapshot, every conversation's audit chain);
// results reach the system audit chain, /readyz and, on failure, a security notice to every
// organisation. The clock is the test's: a "day" passes in one call.

import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SYSTEM_AUDIT_CHAIN } from "../server/app.ts";
import { backupsToKeep } from "../server/backup/backup-rotation.ts";
import { apiClient } from "./helpers/http-client.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { seedConversation } from "./helpers/seed-conversation.ts";
import { type SignedUp, signIn, signUp } from "./helpers/sign-up.ts";

/** CI replays one fixed seed (a red CI is a defect, never a roll of the dice); elsewhere each run explores a new one. */
const CI_SEED = 20261204;

const DAY = 86_400_000;

describe("backup rotation", () => {
  it("keeps the newest backup of each of the last N days, weeks and months, never more", () => {
    const seed = Number(process.env.FC_SEED ?? (process.env.CI === "true" ? CI_SEED : Date.now() % 1_000_000));
    try {
      fc.assert(
        fc.property(
          fc.array(fc.integer({ min: 0, max: 400 * 24 }), { minLength: 1, maxLength: 120 }),
          fc.record({ daily: fc.integer({ min: 1, max: 10 }), weekly: fc.integer({ min: 0, max: 6 }), monthly: fc.integer({ min: 0, max: 14 }) }),
          (hours, counts) => {
            const backups = [...new Set(hours)].map((h) => ({ name: `b${h}`, at: Date.UTC(2026, 0, 1) + h * 3_600_000 }));
            const keep = backupsToKeep(backups, counts);
            const newest = backups.reduce((a, b) => (b.at > a.at ? b : a));
            expect(keep.has(newest.name)).toBe(true);
            expect(keep.size).toBeLessThanOrEqual(counts.daily + counts.weekly + counts.monthly);
            // Never two kept backups of one day unless a week or month keeps the older one.
            const days = new Map<string, number>();
            for (const b of backups) if (keep.has(b.name)) days.set(new Date(b.at).toISOString().slice(0, 10), (days.get(new Date(b.at).toISOString().slice(0, 10)) ?? 0) + 1);
            for (const n of days.values()) expect(n).toBeLessThanOrEqual(3);
          },
        ),
        { seed, numRuns: Number(process.env.FC_RUNS ?? 200) },
      );
    } catch (error) {
      throw new Error(`rotation property failed with FC_SEED=${seed}: ${(error as Error).message}`);
    }
    const daily = Array.from({ length: 100 }, (_, i) => ({ name: `d${i}`, at: Date.UTC(2026, 0, 1) + i * DAY }));
    const kept = backupsToKeep(daily, { daily: 7, weekly: 4, monthly: 3 });
    for (let i = 93; i < 100; i++) expect(kept.has(`d${i}`)).toBe(true); // the last seven days
    expect(kept.has("d89") && kept.has("d58")).toBe(true); // the newest of March and of February
    expect(kept.size).toBeLessThanOrEqual(14);
  });
});

describe("scheduled backups", () => {
  let clock = Date.UTC(2026, 11, 1, 3, 0, 0);
  let backupDir: string;
  let server: TestServer;
  let owner: SignedUp;

  beforeAll(async () => {
    backupDir = await mkdtemp(path.join(tmpdir(), "parley-backups-"));
    server = await startTestServer({
      now: () => clock,
      env: {
        PARLEY_BACKUP_DIR: backupDir,
        PARLEY_BACKUP_EVERY_MINUTES: "1440",
        PARLEY_BACKUP_KEEP_DAILY: "2",
        PARLEY_BACKUP_KEEP_WEEKLY: "0",
        PARLEY_BACKUP_KEEP_MONTHLY: "0",
        PARLEY_BACKUP_DRILL_EVERY: "2",
      },
    });
    const api = apiClient(server.httpUrl);
    owner = await signUp(api, "owner@backups.example", "Backups BV");
    await seedConversation(api, owner.token, "Boiler", ["first", "second"]);
  });
  afterAll(async () => {
    await server?.cleanup();
    await rm(backupDir, { recursive: true, force: true });
  });

  const scheduler = () => {
    const backups = server.server.backups;
    if (!backups) throw new Error("no backup scheduler");
    return backups;
  };

  it("takes a verified backup when one is due, and a passing restore drill every second one", async () => {
    await scheduler().tick(); // due at start (the start-up tick may be the one that runs it)
    await scheduler().tick();
    clock += DAY;
    await scheduler().tick();
    const { backup, drill } = scheduler().latest;
    if (drill && !drill.ok) throw new Error(`drill failed: ${drill.error}`);
    expect(backup).toMatchObject({ kind: "backup", ok: true });
    expect(drill).toMatchObject({ kind: "drill", ok: true });
    expect(drill?.chainsVerified).toBeGreaterThanOrEqual(1);
    expect(drill?.counts?.["parley.db/entries"]).toBeGreaterThanOrEqual(2);
    expect(drill?.counts?.["directory.db/users"]).toBe(1);
    expect((await readdir(backupDir)).filter((n) => n.endsWith(".pbk"))).toHaveLength(2);

    const ready = (await (await fetch(`${server.httpUrl}/readyz`)).json()) as { backups: { backup: { ok: boolean }; drill: { ok: boolean }; totals: Record<string, number> } };
    expect(ready.backups.backup.ok).toBe(true);
    expect(ready.backups.drill.ok).toBe(true);
    expect(ready.backups.totals).toMatchObject({ backups: 2, backupFailures: 0, drills: 1, drillFailures: 0 });

    const chain = await server.server.audit.log.readOrgAuditEntries(SYSTEM_AUDIT_CHAIN, 0, 100);
    expect(chain.map((e) => e.action)).toEqual(["backup.verified", "backup.verified", "drill.passed"]);
    const metrics = await server.server.metrics.registry.getSingleMetricAsString("parley_scheduled_backups_total");
    expect(metrics).toContain('parley_scheduled_backups_total{kind="backup",outcome="ok"} 2');
    expect(metrics).toContain('parley_scheduled_backups_total{kind="drill",outcome="ok"} 1');
  });

  it("keeps only what the rotation keeps", async () => {
    for (let i = 0; i < 3; i++) {
      clock += DAY;
      await scheduler().tick();
    }
    const names = (await readdir(backupDir)).filter((n) => n.endsWith(".pbk")).sort();
    expect(names).toHaveLength(2);
    expect(scheduler().latest.backup?.removed?.length).toBe(1);
  });

  it("reports a failed backup in the audit chain and /readyz, and as a security notice to every organisation", async () => {
    await rm(backupDir, { recursive: true, force: true });
    await writeFile(backupDir, "not a folder"); // the backup folder is gone, a file in its place
    clock += DAY;
    await scheduler().tick();
    expect(scheduler().latest.backup).toMatchObject({ ok: false });
    const ready = (await (await fetch(`${server.httpUrl}/readyz`)).json()) as { status: string; backups: { backup: { ok: boolean; error: string } } };
    expect(ready.status).toBe("ready"); // the node still serves; the detail says what is wrong
    expect(ready.backups.backup.ok).toBe(false);
    const chain = await server.server.audit.log.readOrgAuditEntries(SYSTEM_AUDIT_CHAIN, 0, 100);
    expect(chain.at(-1)?.action).toBe("backup.failed");
    const api = apiClient(server.httpUrl);
    // Signed in again: the test clock has moved days past the sign-up token's expiry.
    const listed = await api("GET", `/v1/organisations/${owner.orgId}/security-notices`, { token: await signIn(api, "owner@backups.example") });
    const kinds = (listed.body.items as { data: { notice: string; advice: string } }[]).map((n) => n.data.notice);
    expect(kinds).toContain("backup.failed");
    await rm(backupDir, { force: true });
  });
});
