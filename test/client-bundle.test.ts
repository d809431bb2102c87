// The client SDK must bundle for browsers: no Node built-ins, nothing from server/, no build errors.

import { builtinModules } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { describe, expect, it } from "vitest";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const builtins = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));

function isNodeBuiltin(specifier: string): boolean {
  return specifier.startsWith("node:") || builtins.has(specifier) || builtins.has(specifier.split("/")[0]);
}

function isServerCode(input: string): boolean {
  const relative = path.relative(root, path.resolve(root, input)).split(path.sep).join("/");
  return relative === "server" || relative.startsWith("server/");
}

async function bundleClient(): Promise<esbuild.Metafile> {
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: ["client-sdk/index.ts"],
    platform: "browser",
    format: "esm",
    bundle: true,
    write: false,
    metafile: true,
    logLevel: "silent",
  });
  expect(result.errors).toEqual([]);
  return result.metafile;
}

describe("client SDK bundle", () => {
  it("bundles for the browser without errors", async () => {
    const metafile = await bundleClient();
    const inputs = Object.keys(metafile.inputs);
    expect(inputs).toContain("client-sdk/index.ts");
    expect(inputs).toContain("protocol/index.ts");
    expect(inputs.some((input) => input.includes("node_modules/yjs/"))).toBe(true);
  });

  it("pulls in no Node built-in module", async () => {
    const metafile = await bundleClient();
    const offenders: string[] = [];
    for (const [input, info] of Object.entries(metafile.inputs)) {
      if (isNodeBuiltin(input)) offenders.push(input);
      for (const imported of info.imports) {
        const specifier = imported.original ?? imported.path;
        if (isNodeBuiltin(imported.path) || isNodeBuiltin(specifier)) offenders.push(`${input} -> ${specifier}`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it("pulls in nothing from server/", async () => {
    const metafile = await bundleClient();
    const serverInputs = Object.keys(metafile.inputs).filter(isServerCode);
    expect(serverInputs).toEqual([]);
  });

  it("fails the build (and so this test) if the SDK imported a Node built-in", async () => {
    // Guards the guard: the same build settings reject a Node import outright.
    const attempt = esbuild.build({
      absWorkingDir: root,
      stdin: { contents: 'import "node:fs"; import "../client-sdk/index.ts";', resolveDir: path.join(root, "test"), loader: "ts" },
      platform: "browser",
      bundle: true,
      write: false,
      metafile: true,
      logLevel: "silent",
    });
    await expect(attempt).rejects.toThrow(/node:fs/);
  });
});
