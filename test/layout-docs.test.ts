// The map and the territory agree: every folder of server/ is described in README's Layout table
// and has a layer, the layer table of ARCHITECTURE.md lists exactly the layers the CI check
// (.dependency-cruiser.cjs) enforces, and neither document names a folder that does not exist.

import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { describe, expect, it } from "vitest";

const root = path.resolve(import.meta.dirname, "..");
const { LAYERS } = createRequire(import.meta.url)(path.join(root, ".dependency-cruiser.cjs")) as { LAYERS: string[][] };
/** The wiring folder beside app.ts and cli.ts: in no layer, imported by nothing. */
const WIRING_FOLDERS = ["cli"];

function hasFiles(dir: string): boolean {
  return readdirSync(dir, { withFileTypes: true }).some((e) => e.isFile() || (e.isDirectory() && hasFiles(path.join(dir, e.name))));
}
const serverFolders = readdirSync(path.join(root, "server"), { withFileTypes: true })
  .filter((e) => e.isDirectory() && hasFiles(path.join(root, "server", e.name)))
  .map((e) => e.name)
  .sort();

/** The `name/` folders a piece of Markdown mentions (one level, as the tables write them). */
function foldersNamed(text: string): string[] {
  return [...new Set([...text.matchAll(/`([a-z][a-z0-9-]*)\/`/g)].map((m) => m[1]))].sort();
}

describe("the layout documents", () => {
  it("give every folder of server/ a layer, and no layer names a missing folder", () => {
    expect([...LAYERS.flat(), ...WIRING_FOLDERS].sort()).toEqual(serverFolders);
  });

  it("describe exactly the folders of server/ in README's Layout table", () => {
    const readme = readFileSync(path.join(root, "README.md"), "utf8");
    const row = readme.split("\n").find((line) => line.startsWith("| `server/` |"));
    expect(row, "README's Layout table has a server/ row").toBeDefined();
    expect(foldersNamed(row!.slice("| `server/` |".length))).toEqual(serverFolders);
  });

  it("list in ARCHITECTURE.md the layers the layer lint enforces, bottom first", () => {
    const architecture = readFileSync(path.join(root, "ARCHITECTURE.md"), "utf8");
    const rows = architecture.split("\n").filter((line) => /^\| \d+ \|/.test(line));
    const documented = rows.map((line) => foldersNamed(line.split("|")[2]));
    expect(documented).toEqual(LAYERS.map((layer) => [...layer].sort()));
    const wiring = architecture.split("\n").find((line) => line.startsWith("| wiring |"));
    expect(foldersNamed(wiring ?? "")).toEqual(WIRING_FOLDERS);
  });
});
