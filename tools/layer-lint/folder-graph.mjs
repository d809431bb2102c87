#!/usr/bin/env node
// Prints the folder graph of server/: every "folder → folder" import edge (type-only imports
// included), sorted, then the folder cycles. Files directly in server/ count as "server/".
// Usage: `npm run graph:folders` (add `-- --files` for the file edges behind each folder edge).
// The layering rules live in .dependency-cruiser.cjs and are checked by `npm run lint:layers`.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { cruise } from "dependency-cruiser";

process.chdir(path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../.."));
const result = await cruise(
  ["server"],
  { tsPreCompilationDeps: true, includeOnly: "^server/" },
  undefined,
  { tsConfig: { fileName: "tsconfig.json" } },
);

// The folder a module belongs to: its first directory below server/ ("server/" for the wiring files).
function folderOf(path) {
  const rest = path.slice("server/".length);
  const slash = rest.indexOf("/");
  return slash === -1 ? "server/" : rest.slice(0, slash);
}

const edges = new Map();
for (const module of result.output.modules) {
  const from = folderOf(module.source);
  for (const dependency of module.dependencies) {
    if (!dependency.resolved.startsWith("server/")) continue;
    const to = folderOf(dependency.resolved);
    if (to === from) continue;
    const key = `${from} → ${to}`;
    const files = edges.get(key) ?? new Set();
    files.add(`${module.source} → ${dependency.resolved}`);
    edges.set(key, files);
  }
}

const verbose = process.argv.includes("--files");
const sorted = [...edges.keys()].sort();
console.log(`# folder edges (${sorted.length})`);
for (const key of sorted) {
  console.log(`${key}  (${edges.get(key).size})`);
  if (verbose) for (const file of [...edges.get(key)].sort()) console.log(`    ${file}`);
}

// Strongly connected components (Tarjan): each one with more than one folder is a cycle.
const graph = new Map();
for (const key of sorted) {
  const [from, to] = key.split(" → ");
  if (!graph.has(from)) graph.set(from, []);
  if (!graph.has(to)) graph.set(to, []);
  graph.get(from).push(to);
}
let index = 0;
const indices = new Map();
const low = new Map();
const stack = [];
const onStack = new Set();
const components = [];
function connect(node) {
  indices.set(node, index);
  low.set(node, index);
  index += 1;
  stack.push(node);
  onStack.add(node);
  for (const next of graph.get(node)) {
    if (!indices.has(next)) {
      connect(next);
      low.set(node, Math.min(low.get(node), low.get(next)));
    } else if (onStack.has(next)) {
      low.set(node, Math.min(low.get(node), indices.get(next)));
    }
  }
  if (low.get(node) === indices.get(node)) {
    const component = [];
    let member;
    do {
      member = stack.pop();
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    if (component.length > 1) components.push(component.sort());
  }
}
for (const node of [...graph.keys()].sort()) if (!indices.has(node)) connect(node);
const folders = [...graph.keys()].filter((f) => f !== "server/");
console.log(`\n# folder cycles (${components.length}; folders: ${folders.length})`);
for (const component of components) console.log(`${component.length} folders: ${component.join(", ")}`);
