// The dependency check (tools/dependency-audit.mjs) against a stand-in advisory service on
// loopback: a finding fails, the network never does. The registry's real answer on this
// project's machines (405 to the POST) is one of the cases; the tool's output must say that the
// run fell back to the dated offline list.

import { execFile } from "node:child_process";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const tool = path.join(root, "tools", "dependency-audit.mjs");
let dir: string;
let server: Server;
let registry: string;
let answer: (body: Record<string, string[]>, res: ServerResponse) => void = (_body, res) => res.end("{}");
const asked: Record<string, string[]>[] = [];

function lockEntry(name: string, version: string, extra: Record<string, unknown> = {}) {
  return { version, resolved: `https://registry.npmjs.org/${name}/-/${name}-${version}.tgz`, integrity: "sha512-AAAA", ...extra };
}

async function writeLock(packages: Record<string, unknown>): Promise<string> {
  const file = path.join(dir, `lock-${Object.keys(packages).join("-").replaceAll("/", "_")}.json`);
  await writeFile(file, JSON.stringify({ name: "fixture", lockfileVersion: 3, packages: { "": { name: "fixture" }, ...packages } }));
  return file;
}

function runTool(lockFile: string, registryUrl = registry): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [tool, "--lock", lockFile, "--registry", registryUrl], { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, output: stdout + stderr });
    });
  });
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "parley-dep-audit-"));
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let text = "";
    req.on("data", (chunk) => {
      text += chunk;
    });
    req.on("end", () => {
      if (req.method !== "POST" || req.url !== "/-/npm/v1/security/advisories/bulk") {
        res.statusCode = 404;
        res.end();
        return;
      }
      const body = JSON.parse(text) as Record<string, string[]>;
      asked.push(body);
      answer(body, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  registry = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

describe("dependency check", () => {
  it("asks the advisory service about every production version, and fails on an advisory that covers one", async () => {
    const lock = await writeLock({
      "node_modules/left-pad": lockEntry("left-pad", "1.1.0"),
      "node_modules/a/node_modules/left-pad": lockEntry("left-pad", "1.3.0"),
      "node_modules/dev-only": lockEntry("dev-only", "2.0.0", { dev: true }),
    });
    answer = (_body, res) => {
      res.setHeader("content-type", "application/json");
      res.end(
        JSON.stringify({
          "left-pad": [{ id: 1, url: "https://example.invalid/advisories/GHSA-test-0001-aaaa", title: "Pads too far", severity: "high", vulnerable_versions: "<1.2.0" }],
        }),
      );
    };
    asked.length = 0;
    const { code, output } = await runTool(lock);
    expect(asked).toEqual([{ "left-pad": ["1.1.0", "1.3.0"] }]);
    expect(output).toContain("GHSA-test-0001-aaaa left-pad@1.1.0 (high): Pads too far");
    expect(output).not.toContain("left-pad@1.3.0");
    expect(code).toBe(1);
  });

  it("passes when the service's advisories cover none of the locked versions", async () => {
    const lock = await writeLock({ "node_modules/left-pad": lockEntry("left-pad", "1.3.0") });
    answer = (_body, res) => res.end(JSON.stringify({ "left-pad": [{ url: "x/GHSA-test-0002", title: "Old", severity: "low", vulnerable_versions: "<1.2.0" }] }));
    const { code, output } = await runTool(lock);
    expect(output).toContain("0 advisories apply");
    expect(output).toContain("dependency check passed");
    expect(code).toBe(0);
  });

  it("falls back to the dated offline list when the service answers 405, as this project's registry does", async () => {
    const lock = await writeLock({ "node_modules/left-pad": lockEntry("left-pad", "1.3.0") });
    answer = (_body, res) => {
      res.statusCode = 405;
      res.setHeader("allow", "GET,HEAD");
      res.end();
    };
    const { code, output } = await runTool(lock);
    expect(output).toMatch(/advisory service unreachable, so this run did NOT check current advisories: POST .* answered 405 Method Not Allowed \(allow: GET,HEAD\)/);
    expect(output).toMatch(/offline list: \d+ advisories, entered by hand .*; last reviewed \d{4}-\d\d-\d\d/);
    expect(output).toContain("dependency check passed (offline list only)");
    expect(code).toBe(0);
  });

  it("falls back, and does not fail, when nothing listens at the service's address", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const lock = await writeLock({ "node_modules/left-pad": lockEntry("left-pad", "1.3.0"), "node_modules/b": lockEntry("b", "1.0.0") });
    const { code, output } = await runTool(lock, `http://127.0.0.1:${port}/`);
    expect(output).toMatch(/unreachable.*ECONNREFUSED/);
    expect(code).toBe(0);
  });

  it("fails on an advisory of the offline list when it has to fall back", async () => {
    const lock = await writeLock({ "node_modules/ws": lockEntry("ws", "8.17.0") });
    answer = (_body, res) => {
      res.statusCode = 503;
      res.end();
    };
    const { code, output } = await runTool(lock);
    expect(output).toContain("answered 503");
    expect(output).toContain("GHSA-3h5v-q93c-6h6q ws@8.17.0 (production)");
    expect(code).toBe(1);
  });

  it("fails on a package without a sha512 integrity or fetched from elsewhere, whatever the service says", async () => {
    const lock = await writeLock({
      "node_modules/weak": lockEntry("weak", "1.0.0", { integrity: "sha1-AAAA" }),
      "node_modules/elsewhere": lockEntry("elsewhere", "1.0.0", { resolved: "http://mirror.invalid/elsewhere-1.0.0.tgz" }),
    });
    answer = (_body, res) => res.end("{}");
    const { code, output } = await runTool(lock);
    expect(output).toContain("node_modules/weak: no sha512 integrity");
    expect(output).toContain("node_modules/elsewhere: resolved from http://mirror.invalid/elsewhere-1.0.0.tgz");
    expect(code).toBe(1);
  });
});
