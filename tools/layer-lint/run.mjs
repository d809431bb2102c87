// `npm run lint:layers`: checks server/ against the layer rules in .dependency-cruiser.cjs and
// fails on any violation, and when fewer TypeScript files were read than server/ holds (a parser
// that cannot read TypeScript would otherwise find no imports and pass).

import { readdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { cruise, format } from "dependency-cruiser";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
process.chdir(root);
const config = createRequire(import.meta.url)(path.join(root, ".dependency-cruiser.cjs"));

function sourceFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return /\.(ts|mjs)$/.test(entry.name) ? [path.relative(root, full)] : [];
  });
}

const result = await cruise(["server"], { ...config.options, ruleSet: { forbidden: config.forbidden }, validate: true }, undefined, {
  tsConfig: { fileName: "tsconfig.json" },
});
const report = await format(result.output, { outputType: "err" });
if (report.output) process.stdout.write(report.output);

const read = new Set(result.output.modules.map((m) => m.source));
const missed = sourceFiles("server").filter((file) => !read.has(file));
const { error = 0, warn = 0 } = result.output.summary;
console.log(`layer lint: ${read.size} modules read (${missed.length} of server/ not read), ${error} errors, ${warn} warnings`);
if (missed.length > 0) console.log(`not read:\n  ${missed.join("\n  ")}`);
if (error > 0 || warn > 0 || missed.length > 0) process.exit(1);
