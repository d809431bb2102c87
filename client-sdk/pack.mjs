// `npm run pack:client`: builds the parley-client package and packs it into client-sdk/pack/,
// printing the tarball's absolute path as the last line (scripts and tests read that line).

import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const destination = path.join(here, "pack");
mkdirSync(destination, { recursive: true });
execFileSync(process.execPath, [path.join(here, "build.mjs")], { stdio: "inherit" });
// The build ran just above: --ignore-scripts keeps prepack from building a second time and keeps
// stdout pure JSON.
const npm = process.env.npm_execpath;
const [command, args] = npm ? [process.execPath, [npm]] : ["npm", []];
const output = execFileSync(command, [...args, "pack", "--json", "--ignore-scripts", "--pack-destination", destination], {
  cwd: here,
  encoding: "utf8",
  stdio: ["ignore", "pipe", "inherit"],
});
const [packed] = JSON.parse(output);
console.log(`${packed.name}@${packed.version}: ${packed.entryCount} files, ${packed.size} bytes packed`);
console.log(path.join(destination, packed.filename));
