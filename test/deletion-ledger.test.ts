// The deletion ledger is what stops a restored backup from resurrecting destroyed data, so it must
// itself be trustworthy: durable appends, and any edit, removal, reordering or truncation of the
// file detected (and named by line) when it is opened.

import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DELETION_LEDGER_FILE, DeletionLedger, LedgerTamperedError } from "../server/lifecycle/deletion-ledger.ts";

let dir: string;
let file: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "parley-ledger-"));
  file = path.join(dir, DELETION_LEDGER_FILE);
  const ledger = await DeletionLedger.open(dir);
  await ledger.append("conversation", "cnv_one", "all-parties-deleted", 1000);
  await ledger.append("person", "usr_two", "person-deleted", 2000);
  await ledger.append("conversation", "cnv_three", "retention", 3000);
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function lines(): Promise<string[]> {
  return (await readFile(file, "utf8")).split("\n").filter((l) => l !== "");
}

async function expectDamagedAt(line: number): Promise<void> {
  const error = await DeletionLedger.open(dir).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(LedgerTamperedError);
  expect((error as LedgerTamperedError).line).toBe(line);
}

describe("deletion ledger", () => {
  it("reads back what was appended, in order, and records a subject once", async () => {
    const ledger = await DeletionLedger.open(dir);
    expect(ledger.list().map((e) => [e.subject, e.id])).toEqual([
      ["conversation", "cnv_one"],
      ["person", "usr_two"],
      ["conversation", "cnv_three"],
    ]);
    await ledger.append("conversation", "cnv_one", "replay", 4000);
    expect(await lines()).toHaveLength(3);
    expect(ledger.has("person", "usr_two")).toBe(true);
    expect(ledger.has("conversation", "usr_two")).toBe(false);
  });

  it("keeps a chain across concurrent appends", async () => {
    const ledger = await DeletionLedger.open(dir);
    await Promise.all(Array.from({ length: 20 }, (_, i) => ledger.append("conversation", `cnv_${i}`, "retention", 5000 + i)));
    expect((await DeletionLedger.open(dir)).list()).toHaveLength(23);
  });

  it("detects an edited entry", async () => {
    const all = await lines();
    all[1] = all[1].replace("usr_two", "usr_xxx");
    await writeFile(file, `${all.join("\n")}\n`);
    await expectDamagedAt(2);
  });

  it("detects a removed entry", async () => {
    const all = await lines();
    all.splice(1, 1);
    await writeFile(file, `${all.join("\n")}\n`);
    await expectDamagedAt(2);
  });

  it("detects reordered entries", async () => {
    const all = await lines();
    await writeFile(file, `${[all[0], all[2], all[1]].join("\n")}\n`);
    await expectDamagedAt(2);
  });

  it("detects a recomputed entry that no longer chains", async () => {
    // Someone rewrites line 1 with a correct hash of their own: line 2 no longer chains to it.
    const { entryHash } = await import("../server/lifecycle/deletion-ledger.ts");
    const all = await lines();
    const first = JSON.parse(all[0]) as Parameters<typeof entryHash>[0] & { hash: string };
    first.id = "cnv_other";
    first.hash = entryHash(first);
    all[0] = JSON.stringify(first);
    await writeFile(file, `${all.join("\n")}\n`);
    await expectDamagedAt(2);
  });

  it("detects a truncated file", async () => {
    const text = await readFile(file, "utf8");
    await writeFile(file, text.slice(0, text.length - 10));
    await expectDamagedAt(3);
  });

  it("detects garbage", async () => {
    await writeFile(file, `${(await lines())[0]}\nnot json\n`);
    await expectDamagedAt(2);
  });
});
