// The dependency check CI runs. First choice: `npm audit --omit=dev` against the registry's
// advisory service; any advisory not listed (with a reason and a review date) in
// audit-exceptions.json fails. Where that service cannot be reached (the development machines'
// registry mirror answers 405 to its POST), it says so loudly and checks package-lock.json
// offline instead: known advisories (known-advisories.json), every package pinned by a sha512
// integrity hash and fetched from the registry over https, and no new install scripts.

import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
const readJson = (file) => JSON.parse(readFileSync(file, "utf8"));
const lock = readJson(path.join(root, "package-lock.json"));
const exceptions = readJson(path.join(here, "audit-exceptions.json")).exceptions;
const known = readJson(path.join(here, "known-advisories.json")).advisories;
/** Production packages allowed to run an install script (native builds); a new one needs review. */
const INSTALL_SCRIPTS = new Set(["argon2", "better-sqlite3", "bufferutil", "esbuild", "msgpackr-extract", "utf-8-validate"]);

const problems = [];
const today = new Date().toISOString().slice(0, 10);

function accepted(id) {
  const entry = exceptions.find((e) => e.id === id);
  if (!entry) return false;
  if (!entry.reason || !entry.reviewBy) throw new Error(`audit-exceptions.json: ${id} needs a reason and a reviewBy date`);
  if (entry.reviewBy < today) {
    problems.push(`${id}: its exception expired on ${entry.reviewBy} (${entry.reason})`);
    return true;
  }
  console.log(`accepted until ${entry.reviewBy}: ${id} (${entry.reason})`);
  return true;
}

async function onlineAudit() {
  try {
    const { stdout } = await promisify(execFile)("npm", ["audit", "--omit=dev", "--json"], { cwd: root, maxBuffer: 64 * 1024 * 1024 });
    return JSON.parse(stdout);
  } catch (error) {
    // npm audit exits 1 both when it found something (stdout is the report) and when it could not ask.
    try {
      return JSON.parse(error.stdout ?? "");
    } catch {
      return { error: { summary: error.message } };
    }
  }
}

function versionParts(version) {
  return version.split(/[-+]/)[0].split(".").map(Number);
}

function compare(a, b) {
  const [x, y] = [versionParts(a), versionParts(b)];
  for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

function offlineChecks() {
  const installed = Object.entries(lock.packages ?? {}).filter(([key]) => key !== "");
  for (const [key, entry] of installed) {
    const name = key.slice(key.lastIndexOf("node_modules/") + "node_modules/".length);
    if (entry.link) continue;
    if (!String(entry.integrity ?? "").startsWith("sha512-")) problems.push(`${key}: no sha512 integrity in the lock file`);
    if (entry.resolved && !entry.resolved.startsWith("https://registry.npmjs.org/")) problems.push(`${key}: resolved from ${entry.resolved}, not the registry over https`);
    if (entry.hasInstallScript && !entry.dev && !INSTALL_SCRIPTS.has(name)) problems.push(`${key}: a new production package with an install script (review it, then list it in INSTALL_SCRIPTS)`);
    for (const advisory of known) {
      if (advisory.package !== name || !entry.version) continue;
      const hit = advisory.vulnerable.some(([from, before]) => compare(entry.version, from) >= 0 && compare(entry.version, before) < 0);
      if (hit && !accepted(advisory.id)) problems.push(`${advisory.id} ${name}@${entry.version} (${entry.dev ? "dev" : "production"}): ${advisory.title}`);
    }
  }
  console.log(`offline check: ${installed.length} locked packages, ${known.length} known advisories`);
}

const report = await onlineAudit();
if (report.vulnerabilities) {
  let count = 0;
  for (const [name, finding] of Object.entries(report.vulnerabilities)) {
    for (const via of finding.via) {
      if (typeof via !== "object") continue;
      count++;
      const id = String(via.url ?? via.source).split("/").pop();
      if (!accepted(id)) problems.push(`${id} ${name} ${via.range} (${via.severity}): ${via.title}`);
    }
  }
  console.log(`npm audit --omit=dev: ${count} advisories`);
} else {
  const why = report.error?.summary || report.message || "no report";
  console.log(`!! npm audit could not reach the advisory service (${why.split("\n")[0]}): checking the lock file offline instead`);
}
offlineChecks();
if (problems.length > 0) {
  console.log(`dependency check failed:\n  ${problems.join("\n  ")}`);
  process.exit(1);
}
console.log("dependency check passed");
