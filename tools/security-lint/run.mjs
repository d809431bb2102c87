// Runs the security lint over the repository and fails on any finding, on any file the parser
// could not read (a file that does not parse is a file nobody checked), and when fewer files
// were checked than the patterns name (a silently ignored folder). Run from anywhere:
// `npm run lint:security` at the root.

import { readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ESLint } from "eslint";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const folders = ["server", "protocol", "client-sdk"];

function tsFiles(dir) {
  const found = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === "node_modules" || entry.name === "dist") continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...tsFiles(full));
    else if (entry.name.endsWith(".ts")) found.push(full);
  }
  return found;
}

const expected = folders.flatMap((folder) => tsFiles(path.join(root, folder)));
const eslint = new ESLint({ cwd: root, overrideConfigFile: path.join(here, "eslint.config.js"), errorOnUnmatchedPattern: true });
const results = await eslint.lintFiles(folders.map((folder) => `${folder}/**/*.ts`));
const formatter = await eslint.loadFormatter("stylish");
const output = await formatter.format(results);
if (output) process.stdout.write(output);

const unparsed = results.filter((r) => r.messages.some((m) => m.fatal));
const findings = results.reduce((n, r) => n + r.errorCount + r.warningCount, 0);
const checked = new Set(results.map((r) => r.filePath));
const missed = expected.filter((file) => !checked.has(file));
console.log(`security lint: ${results.length} files checked (${expected.length} expected), ${findings} findings, ${unparsed.length} not parsed`);
if (missed.length > 0) console.log(`not checked:\n  ${missed.map((f) => path.relative(root, f)).join("\n  ")}`);
if (findings > 0 || unparsed.length > 0 || missed.length > 0) process.exit(1);
