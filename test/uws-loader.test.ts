// The uWS loader picks the official uWebSockets.js build when it is installed and loads, falls back
// to the Node 20 build otherwise, and refuses to run on a ws shim. The "official" modules here are
// real files in a temporary node_modules: one not installed, one that throws as the official build
// does on a Node it has no binary for, one that loads (it hands over the native binary that loads
// on this machine).

import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { NODE20_UWS_MODULE, OFFICIAL_UWS_MODULE, selectUws, uwsCandidates } from "../server/platform/uws.ts";

const repoRequire = createRequire(import.meta.url);
const nativePath = repoRequire.resolve(NODE20_UWS_MODULE);
let dir: string | undefined;

afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

/** A require that finds `uws-official` in a fresh node_modules with `source` as its index.js (none when null). */
async function requireWithOfficial(source: string | null): Promise<(id: string) => unknown> {
  dir = await mkdtemp(path.join(tmpdir(), "parley-uws-"));
  if (source !== null) {
    const pkg = path.join(dir, "node_modules", OFFICIAL_UWS_MODULE);
    await mkdir(pkg, { recursive: true });
    await writeFile(path.join(pkg, "package.json"), JSON.stringify({ name: "uWebSockets.js", main: "index.js" }));
    await writeFile(path.join(pkg, "index.js"), source);
  }
  const local = createRequire(path.join(dir, "index.js"));
  return (id) => (id === OFFICIAL_UWS_MODULE ? local(id) : repoRequire(id));
}

describe("uWebSockets.js loader", () => {
  it("tries the official build first, then the Node 20 build; PARLEY_UWS_MODULE alone when set", () => {
    expect(uwsCandidates({})).toEqual([OFFICIAL_UWS_MODULE, NODE20_UWS_MODULE]);
    expect(uwsCandidates({ PARLEY_UWS_MODULE: "/opt/uws/uws.js" })).toEqual(["/opt/uws/uws.js"]);
  });

  it("falls back to the Node 20 build when the official one is not installed", async () => {
    const loaded = selectUws(uwsCandidates({}), await requireWithOfficial(null));
    expect(loaded.module).toBe(NODE20_UWS_MODULE);
    expect(loaded.passedOver).toEqual([`${OFFICIAL_UWS_MODULE}: not installed`]);
    expect(typeof loaded.uws.App).toBe("function");
  });

  it("falls back when the official build has no binary for this Node, and says why", async () => {
    const load = await requireWithOfficial(
      'throw new Error("This version of uWS.js (v20.52.0) supports only Node.js versions 18, 20, 22, 23 and 24 on (glibc) Linux, macOS and Windows, on Tier 1 platforms.");',
    );
    const loaded = selectUws(uwsCandidates({}), load);
    expect(loaded.module).toBe(NODE20_UWS_MODULE);
    expect(loaded.passedOver[0]).toMatch(/^uws-official: This version of uWS\.js/);
  });

  it("takes the official build when it is installed and loads", async () => {
    const loaded = selectUws(uwsCandidates({}), await requireWithOfficial(`module.exports = require(${JSON.stringify(nativePath)});`));
    expect(loaded.module).toBe(OFFICIAL_UWS_MODULE);
    expect(loaded.passedOver).toEqual([]);
  });

  it("refuses a ws shim and names the fix", async () => {
    const shim = "module.exports = { App() {}, SSLApp() {} };";
    const load = await requireWithOfficial(shim);
    expect(() => selectUws([OFFICIAL_UWS_MODULE], load)).toThrow(/native binary did not load.*npm install --no-save uws-official@github:uNetworking/s);
  });
});
