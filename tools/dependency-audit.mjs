// The dependency check CI runs. First choice: the registry's bulk advisory service (the endpoint
// `npm audit` uses), asked directly about every production package and version in
// package-lock.json; an advisory not accepted (with a reason and a review date) in
// audit-exceptions.json fails. A network failure, a timeout or a refusal (this project's machines'
// registry answers 405 to the POST) is not a finding: the check says so, with the answer it got,
// and falls back to the offline list known-advisories.json (hand-entered, dated). The lock file's
// own checks run either way: sha512 integrity, the registry over https, no new install scripts.
//
//   node tools/dependency-audit.mjs [--lock <package-lock.json>] [--registry <url>]
// Exit 0: no finding. Exit 1: a finding (or an expired exception). Never exit 1 for the network.

import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import semver from "semver";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
const { values: args } = parseArgs({ options: { lock: { type: "string" }, registry: { type: "string" } } });
const readJson = (file) => JSON.parse(readFileSync(file, "utf8"));
const lock = readJson(args.lock ?? path.join(root, "package-lock.json"));
const exceptions = readJson(path.join(here, "audit-exceptions.json")).exceptions;
const offlineList = readJson(path.join(here, "known-advisories.json"));
// `npm run` passes the configured registry as npm_config_registry.
const registry = (args.registry ?? process.env.npm_config_registry ?? "https://registry.npmjs.org/").replace(/\/?$/, "/");
const BULK_PATH = "-/npm/v1/security/advisories/bulk";
/** Long enough for a slow registry, short enough that CI never hangs on it. */
const ONLINE_TIMEOUT_MS = 30_000;
/** The offline list is reviewed at least this often; older, the check warns (it does not fail: time is not a finding). */
const OFFLINE_LIST_MAX_AGE_DAYS = 90;
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

/** Every locked package as { key, name, entry }, the root and workspace links left out. */
function lockedPackages() {
  return Object.entries(lock.packages ?? {})
    .filter(([key, entry]) => key !== "" && !entry.link)
    .map(([key, entry]) => ({ key, name: key.slice(key.lastIndexOf("node_modules/") + "node_modules/".length), entry }));
}

/** The bulk request body: production package name → every version of it in the lock file. */
function productionVersions(packages) {
  const versions = {};
  for (const { name, entry } of packages) {
    if (entry.dev || !entry.version) continue;
    versions[name] ??= [];
    if (!versions[name].includes(entry.version)) versions[name].push(entry.version);
  }
  return versions;
}

/** The bulk service's answer (name → advisories), or { unreachable: why } for anything that is not one. */
async function askAdvisoryService(versions) {
  const url = `${registry}${BULK_PATH}`;
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify(versions),
      signal: AbortSignal.timeout(ONLINE_TIMEOUT_MS),
    });
    if (!response.ok) {
      const allow = response.headers.get("allow");
      return { unreachable: `POST ${url} answered ${response.status} ${response.statusText}${allow ? ` (allow: ${allow})` : ""}` };
    }
    const body = await response.json();
    if (typeof body !== "object" || body === null || Array.isArray(body)) return { unreachable: `POST ${url} answered 200 with something other than an advisory map` };
    return { advisories: body };
  } catch (error) {
    return { unreachable: `POST ${url} failed: ${error.cause?.code ?? error.name}: ${error.message}` };
  }
}

/** Findings from the service's answer: each advisory whose range covers a locked production version. */
function onlineFindings(advisories, versions) {
  let count = 0;
  for (const [name, list] of Object.entries(advisories)) {
    if (!Array.isArray(list)) continue;
    for (const advisory of list) {
      const id = String(advisory.url ?? advisory.id).split("/").pop();
      for (const version of versions[name] ?? []) {
        if (!semver.satisfies(version, advisory.vulnerable_versions ?? "*", { loose: true })) continue;
        count++;
        if (!accepted(id)) problems.push(`${id} ${name}@${version} (${advisory.severity ?? "unknown severity"}): ${advisory.title}`);
      }
    }
  }
  return count;
}

function versionParts(version) {
  return version.split(/[-+]/)[0].split(".").map(Number);
}

function compare(a, b) {
  const [x, y] = [versionParts(a), versionParts(b)];
  for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

/** The fallback: the hand-entered list, against every locked package (dev ones too: the list is small). */
function offlineListFindings(packages) {
  const { provenance, advisories } = offlineList;
  const ageDays = Math.floor((Date.parse(today) - Date.parse(provenance.lastReviewed)) / 86_400_000);
  console.log(`   offline list: ${advisories.length} advisories, ${provenance.source}; last reviewed ${provenance.lastReviewed} (${ageDays} days ago) by ${provenance.reviewedBy}`);
  if (!(ageDays <= OFFLINE_LIST_MAX_AGE_DAYS)) {
    console.log(`!! the offline list was last reviewed more than ${OFFLINE_LIST_MAX_AGE_DAYS} days ago: it misses every advisory published since. Review it (tools/known-advisories.json).`);
  }
  for (const { name, entry } of packages) {
    for (const advisory of advisories) {
      if (advisory.package !== name || !entry.version) continue;
      const hit = advisory.vulnerable.some(([from, before]) => compare(entry.version, from) >= 0 && compare(entry.version, before) < 0);
      if (hit && !accepted(advisory.id)) problems.push(`${advisory.id} ${name}@${entry.version} (${entry.dev ? "dev" : "production"}): ${advisory.title}`);
    }
  }
}

/** Checks that need no advisory data: how each package is pinned and fetched. */
function lockFileChecks(packages) {
  for (const { key, name, entry } of packages) {
    if (!String(entry.integrity ?? "").startsWith("sha512-")) problems.push(`${key}: no sha512 integrity in the lock file`);
    if (entry.resolved && !entry.resolved.startsWith("https://registry.npmjs.org/")) problems.push(`${key}: resolved from ${entry.resolved}, not the registry over https`);
    if (entry.hasInstallScript && !entry.dev && !INSTALL_SCRIPTS.has(name)) problems.push(`${key}: a new production package with an install script (review it, then list it in INSTALL_SCRIPTS)`);
  }
  console.log(`lock file: ${packages.length} locked packages (sha512 integrity, registry over https, reviewed install scripts)`);
}

const packages = lockedPackages();
const versions = productionVersions(packages);
const askedVersions = Object.values(versions).reduce((sum, list) => sum + list.length, 0);
const answer = await askAdvisoryService(versions);
if (answer.advisories) {
  const count = onlineFindings(answer.advisories, versions);
  console.log(`advisory service (${registry}${BULK_PATH}): ${Object.keys(versions).length} production packages, ${askedVersions} versions asked; ${count} advisories apply`);
} else {
  console.log(`!! advisory service unreachable, so this run did NOT check current advisories: ${answer.unreachable}`);
  console.log("   falling back to the offline list (not a failure: the network is not a finding)");
  offlineListFindings(packages);
}
lockFileChecks(packages);
if (problems.length > 0) {
  console.log(`dependency check failed:\n  ${problems.join("\n  ")}`);
  process.exit(1);
}
console.log(answer.advisories ? "dependency check passed" : "dependency check passed (offline list only)");
