// Mints a Parley access token with the server's own CLI (`server/cli.ts token`), for one user
// who may write to every conversation of a benchmark run.

import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

export async function mintParleyToken(repoRoot: string, dataDir: string, conversations: string[]): Promise<string> {
  const args = ["--import", "tsx", "server/cli.ts", "token", "--data-dir", dataDir];
  args.push("--user", "bench-user", "--org", "bench-org", "--role", "writer", "--ttl", "1h");
  for (const conversation of conversations) args.push("--conversation", conversation);
  let stdout: string;
  try {
    ({ stdout } = await run(process.execPath, args, { cwd: repoRoot, timeout: 30_000 }));
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? "").trim().split("\n").slice(-3).join(" | ");
    throw new Error(`parley token command failed: ${stderr || (error as Error).message}`);
  }
  const token = stdout.trim().split("\n").pop() ?? "";
  if (!/^[\w-]+\.[\w-]+\.[\w-]+$/.test(token)) throw new Error(`token command printed no JWT: ${stdout.slice(0, 200)}`);
  return token;
}
