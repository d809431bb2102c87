// The parley-client package as an integrator gets it: `npm run pack:client` builds and packs it,
// the tarball is installed (with its peers) into an empty project outside this repository, and
// is used from plain JavaScript under `node`, from an esbuild browser bundle running in Chromium,
// and from a TypeScript consumer compiled by `tsc` — each against a real server.

import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { builtinModules, createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as esbuild from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readReadmeBlock } from "./helpers/readme.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";

const execFileAsync = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const requireHere = createRequire(import.meta.url);
const versionOf = (name: string) => (requireHere(`${name}/package.json`) as { version: string }).version;
const TSC = path.join(path.dirname(requireHere.resolve("typescript/package.json")), "bin/tsc");
const CHROMIUM = process.env.PARLEY_CHROMIUM ?? "/usr/bin/chromium";

/** An environment for child processes without any TypeScript loader vitest or a shell may add. */
function plainNodeEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env.NODE_OPTIONS;
  return env;
}

async function runNode(cwd: string, script: string, env: Record<string, string>, nodeFlags: string[] = []): Promise<string> {
  const { stdout } = await execFileAsync(process.execPath, [...nodeFlags, script], { cwd, env: plainNodeEnv(env), timeout: 60_000 });
  return stdout;
}

let server: TestServer;
let tarball: string;
let consumer: string;

beforeAll(async () => {
  const packed = await execFileAsync("npm", ["run", "--silent", "pack:client"], { cwd: root, timeout: 120_000 });
  tarball = packed.stdout.trim().split("\n").at(-1)!;
  consumer = await mkdtemp(path.join(tmpdir(), "parley-consumer-"));
  await writeFile(path.join(consumer, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
  // The peers at the versions this repository tests with (so npm's cache usually answers), and
  // `ws` for Node 20, which has no global WebSocket.
  const peers = ["yjs", "y-protocols", "lib0", "ws"].map((name) => `${name}@${versionOf(name)}`);
  await execFileAsync("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", tarball, ...peers], {
    cwd: consumer,
    timeout: 180_000,
  });
  server = await startTestServer();
}, 300_000);

afterAll(async () => {
  await server?.cleanup();
  if (consumer) await rm(consumer, { recursive: true, force: true });
});

describe("the packed parley-client package", () => {
  it("is printed by pack:client as a path, ships JavaScript and declarations only", async () => {
    expect(path.isAbsolute(tarball)).toBe(true);
    expect(existsSync(tarball)).toBe(true);
    const installed = path.join(consumer, "node_modules/parley-client");
    const files = (await readdir(installed, { recursive: true })).map((file) => file.split(path.sep).join("/"));
    expect(files).toContain("dist/client-sdk/index.js");
    expect(files).toContain("dist/client-sdk/index.d.ts");
    expect(files).toContain("dist/protocol/index.js");
    expect(files.filter((file) => file.endsWith(".ts") && !file.endsWith(".d.ts"))).toEqual([]);
    for (const file of files.filter((f) => f.endsWith(".js") || f.endsWith(".d.ts"))) {
      const text = await readFile(path.join(installed, file), "utf8");
      expect(text, file).not.toMatch(/from\s+["']\.{1,2}\/[^"']*\.ts["']/);
      expect(text, file).not.toMatch(/(?:from|import)\s*\(?\s*["'][^"']*server\//);
    }
  });

  it("pulls in none of the server's dependencies", async () => {
    const serverDeps = Object.keys((JSON.parse(await readFile(path.join(root, "package.json"), "utf8")) as { dependencies: Record<string, string> }).dependencies);
    const clientDeps = new Set(["yjs", "y-protocols", "lib0", "msgpackr"]);
    const installed = new Set(await readdir(path.join(consumer, "node_modules")));
    expect(serverDeps.filter((name) => !clientDeps.has(name) && installed.has(name.split("/")[0]))).toEqual([]);
    const manifest = JSON.parse(await readFile(path.join(consumer, "node_modules/parley-client/package.json"), "utf8"));
    expect(Object.keys(manifest.peerDependencies).sort()).toEqual(["lib0", "y-protocols", "yjs"]);
    expect(Object.keys(manifest.dependencies ?? {})).toEqual(["msgpackr"]);
  });

  it("works from plain JavaScript under node: two clients converge through a real server", async () => {
    await writeFile(
      path.join(consumer, "converge.mjs"),
      `import { ParleyClient, appendMessage, readMessages, ErrorCode } from "parley-client";
import { PROTOCOL_VERSION, isConversationId } from "parley-client/protocol";
const WebSocket = globalThis.WebSocket ?? (await import("ws")).default;
const open = (token) => new ParleyClient({ url: process.env.PARLEY_URL, token: () => token, WebSocket });
const a = open(process.env.TOKEN_A);
const b = open(process.env.TOKEN_B);
const writer = a.open("pkg-room");
const reader = b.open("pkg-room");
await Promise.all([writer.whenSynced(), reader.whenSynced()]);
const seen = new Promise((resolve) => reader.doc.on("update", () => readMessages(reader.doc).length > 0 && resolve()));
appendMessage(writer.doc, { id: "m-1", authorUser: "ann", authorOrg: "helpdesk", text: "from plain node", createdAt: Date.now() });
await writer.whenSaved();
await seen;
console.log(JSON.stringify({ texts: readMessages(reader.doc).map((m) => m.text), seq: writer.status.lastSavedSeq,
  forbidden: ErrorCode.Forbidden, version: PROTOCOL_VERSION, valid: isConversationId("pkg-room") }));
a.close(); b.close();
`,
    );
    const tokenA = await server.token({ user: "ann", org: "helpdesk", conversations: { "pkg-room": "writer" } });
    const tokenB = await server.token({ user: "sam", org: "supplier", conversations: { "pkg-room": "observer" } });
    const out = JSON.parse(await runNode(consumer, "converge.mjs", { PARLEY_URL: server.url, TOKEN_A: tokenA, TOKEN_B: tokenB }));
    expect(out.texts).toEqual(["from plain node"]);
    expect(out.seq).toBeGreaterThan(0);
    expect(out.forbidden).toBe(3001);
    expect(out.version).toBeGreaterThan(0);
    expect(out.valid).toBe(true);
  });

  it("runs the README's SDK snippet as written", async () => {
    const snippet = await readReadmeBlock("js", "quickstart.mjs");
    await writeFile(path.join(consumer, "quickstart.mjs"), snippet);
    const token = await server.token({ user: "alice", org: "helpdesk", conversations: { "ticket-42": "writer" } });
    const out = await runNode(consumer, "quickstart.mjs", { PARLEY_URL: server.url, PARLEY_TOKEN: token });
    expect(out).toContain("Hi!");
    expect(out).toMatch(/synced 0 [1-9]/);
  });

  it("uses Node's own global WebSocket when there is one (Node >= 22; Node 20 behind --experimental-websocket)", async () => {
    await writeFile(
      path.join(consumer, "global-websocket.mjs"),
      `import { ParleyClient, appendMessage } from "parley-client";
if (typeof globalThis.WebSocket !== "function") throw new Error("no global WebSocket");
const client = new ParleyClient({ url: process.env.PARLEY_URL, token: () => process.env.PARLEY_TOKEN });
const conversation = client.open("global-ws");
await conversation.whenSynced();
appendMessage(conversation.doc, { id: "g-1", authorUser: "gil", authorOrg: "helpdesk", text: "global", createdAt: Date.now() });
await conversation.whenSaved();
console.log(JSON.stringify({ seq: conversation.status.lastSavedSeq }));
client.close();
`,
    );
    const token = await server.token({ user: "gil", org: "helpdesk", conversations: { "global-ws": "writer" } });
    const major = Number(process.versions.node.split(".")[0]);
    const flags = major < 22 ? ["--experimental-websocket", "--no-warnings"] : [];
    const out = JSON.parse(await runNode(consumer, "global-websocket.mjs", { PARLEY_URL: server.url, PARLEY_TOKEN: token }, flags));
    expect(out.seq).toBeGreaterThan(0);
  });

  it("bundles for the browser with esbuild (no Node built-in) and runs there with the global WebSocket", async (context) => {
    await writeFile(
      path.join(consumer, "browser.js"),
      `import { ParleyClient, appendMessage, readMessages } from "parley-client";
import { CloseCode } from "parley-client/protocol";
window.runParley = async (url, token) => {
  const client = new ParleyClient({ url, token: () => token });
  const conversation = client.open("browser-room");
  await conversation.whenSynced();
  appendMessage(conversation.doc, { id: "b-1", authorUser: "bea", authorOrg: "helpdesk", text: "from a browser", createdAt: Date.now() });
  await conversation.whenSaved();
  const result = { texts: readMessages(conversation.doc).map((m) => m.text), seq: conversation.status.lastSavedSeq, close: CloseCode.AuthFailed };
  client.close();
  return result;
};
`,
    );
    const result = await esbuild.build({
      absWorkingDir: consumer,
      entryPoints: ["browser.js"],
      platform: "browser",
      format: "esm",
      bundle: true,
      write: false,
      metafile: true,
      logLevel: "silent",
    });
    const inputs = Object.entries(result.metafile.inputs);
    expect(inputs.map(([input]) => input)).toContain("node_modules/parley-client/dist/client-sdk/index.js");
    const builtins = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));
    const offenders = inputs.flatMap(([input, info]) =>
      info.imports.filter((i) => i.path.startsWith("node:") || builtins.has(i.path.split("/")[0])).map((i) => `${input} -> ${i.path}`),
    );
    expect(offenders).toEqual([]);

    if (!existsSync(CHROMIUM)) {
      if (process.env.CI === "true") throw new Error(`no Chromium at ${CHROMIUM} (set PARLEY_CHROMIUM)`);
      console.warn(`SKIPPED: running the bundle in a browser needs Chromium at ${CHROMIUM} (set PARLEY_CHROMIUM)`);
      context.skip();
    }
    const { chromium } = await import("playwright-core");
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    try {
      const page = await browser.newPage();
      await page.setContent("<!doctype html><title>parley-client</title>");
      await page.addScriptTag({ content: result.outputFiles[0].text, type: "module" });
      await page.waitForFunction(() => typeof (globalThis as unknown as { runParley?: unknown }).runParley === "function");
      const token = await server.token({ user: "bea", org: "helpdesk", conversations: { "browser-room": "writer" } });
      const outcome = await page.evaluate(
        ([url, t]) => (globalThis as unknown as { runParley(u: string, t: string): Promise<{ texts: string[]; seq: number; close: number }> }).runParley(url, t),
        [server.url, token] as const,
      );
      expect(outcome.texts).toEqual(["from a browser"]);
      expect(outcome.seq).toBeGreaterThan(0);
      expect(outcome.close).toBe(4401);
    } finally {
      await browser.close();
    }
  });

  it("type-checks in a TypeScript consumer with tsc's defaults for a bundler project, and catches misuse", async () => {
    // `tsc --init`'s settings (TypeScript 7), with the module settings TypeScript recommends for
    // bundlers; skipLibCheck off so the package's own declarations are checked as well.
    const tsconfig = {
      compilerOptions: {
        module: "preserve",
        moduleResolution: "bundler",
        target: "esnext",
        types: [],
        strict: true,
        noUncheckedIndexedAccess: true,
        exactOptionalPropertyTypes: true,
        verbatimModuleSyntax: true,
        isolatedModules: true,
        noUncheckedSideEffectImports: true,
        moduleDetection: "force",
        skipLibCheck: false,
        noEmit: true,
      },
      files: ["app.ts"],
    };
    await writeFile(path.join(consumer, "tsconfig.json"), JSON.stringify(tsconfig, null, 2));
    const app = `import { ParleyClient, ParleyError, appendMessage, readMessages, type ConversationHandle, type ConversationStatusInfo, type ParleyEvent } from "parley-client";
import { CloseCode, ErrorCode, type ConversationMessage } from "parley-client/protocol";
import * as Y from "yjs";

const client = new ParleyClient({ url: "wss://parley.example/ws", token: async () => "token" });
const conversation: ConversationHandle = client.open("ticket-42", { doc: new Y.Doc() });
conversation.on("status", (s: ConversationStatusInfo) => console.log(s.state, s.unsavedChanges, s.lastSavedSeq));
const message: ConversationMessage = { id: "1", authorUser: "u", authorOrg: "o", text: "hi", createdAt: Date.now() };
appendMessage(conversation.doc, message);
const texts: string[] = readMessages(conversation.doc).map((m) => m.text);
async function follow(): Promise<number> {
  for await (const event of client.events({ after: 0 })) {
    const typed: ParleyEvent = event;
    return typed.cursor;
  }
  return 0;
}
const codes: number[] = [CloseCode.AuthFailed, ErrorCode.Forbidden, new ParleyError(1, "x").code];
export { follow, texts, codes };
`;
    await writeFile(path.join(consumer, "app.ts"), app);
    /** tsc's complaints (empty when it compiles). */
    const compile = () =>
      execFileAsync(process.execPath, [TSC, "-p", consumer], { cwd: consumer, env: plainNodeEnv({}) }).then(
        () => "",
        (error: { stdout: string }) => error.stdout,
      );
    expect(await compile()).toBe("");

    // tsc --init's own module setting (nodenext) resolves the package the way Node does.
    const nodenext = { ...tsconfig, compilerOptions: { ...tsconfig.compilerOptions, module: "nodenext", moduleResolution: "nodenext" } };
    await writeFile(path.join(consumer, "tsconfig.json"), JSON.stringify(nodenext, null, 2));
    expect(await compile()).toBe("");

    // The guard of the guard: the types are real (not `any`), so misuse fails to compile.
    await writeFile(path.join(consumer, "app.ts"), `${app}\nconst wrong: number = client.open("x").conversationId;\nexport { wrong };\n`);
    expect(await compile()).toMatch(/TS2322/);
  });
});
