// The README's curl journey as a newcomer runs it: the shell blocks are taken out of README.md
// and run with bash, as written, from a directory whose ./data is a real server's data directory
// (where `npm start` keeps it) — twice on the same server. The partner blocks follow (an API key,
// the event page, the live SSE stream from cursor=0), and nothing is left in the working directory.

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { readReadmeBlock } from "./helpers/readme.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";

/** The journey's tools: the README says it needs them, and CI installs them. */
const missingTools = ["curl", "jq"].filter((tool) => {
  try {
    execFileSync("bash", ["-c", `command -v ${tool}`], { stdio: "ignore" });
    return false;
  } catch {
    return true;
  }
});
if (missingTools.length > 0) {
  if (process.env.CI === "true") throw new Error(`the README journey needs ${missingTools.join(" and ")}`);
  console.warn(`SKIPPED: the README journey needs ${missingTools.join(" and ")}`);
}

let workDir: string;
let tokensDir: string;
let server: TestServer;
let script: string;

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), "parley-readme-"));
  // mktemp -d makes $T here (TMPDIR), so the test can look at it and clean it up.
  tokensDir = await mkdtemp(path.join(tmpdir(), "parley-readme-tmp-"));
  server = await startTestServer({ dataDir: path.join(workDir, "data") });
  const blocks = await Promise.all([
    readReadmeBlock("sh", "# supplier journey"),
    readReadmeBlock("sh", "# api key (after the journey"),
    readReadmeBlock("sh", "# events (after the journey"),
  ]);
  script = blocks.join("\n");
});

afterAll(async () => {
  await server?.cleanup();
  for (const dir of [workDir, tokensDir]) if (dir) await rm(dir, { recursive: true, force: true });
});

/** Runs the blocks in bash until the live stream has shown `until`; returns everything printed. */
async function runJourney(until: string): Promise<string> {
  const bash: ChildProcess = spawn("bash", ["-c", script], {
    cwd: workDir,
    env: { ...process.env, B: server.httpUrl, TMPDIR: tokensDir },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // its own process group: the endless `curl -N` goes with it
  });
  let out = "";
  let err = "";
  bash.stdout?.on("data", (chunk: Buffer) => {
    out += chunk.toString();
  });
  bash.stderr?.on("data", (chunk: Buffer) => {
    err += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => bash.once("exit", (code) => resolve(code)));
  try {
    await Promise.race([
      vi.waitFor(() => expect(out).toContain(until), { timeout: 60_000, interval: 100 }),
      exited.then((code) => {
        throw new Error(`the journey ended (exit ${code}) before the stream showed ${until}\n${out}\n${err}`);
      }),
    ]);
  } finally {
    if (bash.exitCode === null) process.kill(-bash.pid!, "SIGTERM");
    await exited;
  }
  return out;
}

describe.skipIf(missingTools.length > 0)("the README's curl journey, run as written", () => {
  it("runs twice on one server: sign-up, invitation, supplier's message, refresh, listing, partner events", async () => {
    const outputs = [];
    for (let run = 1; run <= 2; run++) {
      const out = await runJourney('"type":"message.created"');
      outputs.push(out);
      // The supplier's write is committed; after the token refresh the helpdesk reads it back.
      expect(out).toMatch(/"text":"On my way, there by 3pm\."\S*"seq":1/);
      expect(out).toContain('{"tokenType":"Bearer","expiresIn":900}');
      expect(out).toMatch(/^\{"text":"On my way, there by 3pm\.","authorOrg":"org_\w+"\}$/m);
      expect(out).toMatch(/^\{"id":"cnv_\w+","title":"Broken boiler","externalRef":"TICKET-42"\}$/m);
      // The event page, then the live stream from cursor=0 (which once failed on a fresh install).
      expect(out).toMatch(/"types":\["conversation.created","invitation.sent","invitation.opened","invitation.accepted"/);
      expect(out).toMatch(/^id: 1$/m);
      expect(out).not.toContain('"error"');
    }
    // A second run is a new journey, not a replay of the first.
    const conversationOf = (out: string) => /"id":"(cnv_\w+)","title"/.exec(out)?.[1];
    expect(conversationOf(outputs[1])).not.toBe(conversationOf(outputs[0]));
    // Tokens went to a temporary directory: the working directory holds only the server's data.
    expect(await readdir(workDir)).toEqual(["data"]);
    const runs = await readdir(tokensDir);
    expect(runs).toHaveLength(2);
    for (const run of runs) expect((await readdir(path.join(tokensDir, run))).sort()).toEqual(["ann.json", "sam.json"]);
  }, 180_000);
});
