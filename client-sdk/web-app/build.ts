// Builds Parley's web app with esbuild into dist/web-app (never committed): one minified ES module
// and one stylesheet with content hashes in their names, and an index.html that loads them (no
// inline script, so the server's CSP needs no exception). `npm start` runs it first.

import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import * as esbuild from "esbuild";

const here = path.dirname(fileURLToPath(import.meta.url));
/** Where the server looks for the app by default (PARLEY_WEB_APP_DIR overrides it). */
export const DEFAULT_WEB_APP_OUT = path.resolve(here, "../../dist/web-app");

/** What a build wrote. */
export interface WebAppBuild {
  outDir: string;
  /** Asset paths relative to outDir, e.g. `assets/app-XXXX.js`. */
  script: string;
  stylesheet: string;
  scriptBytes: number;
  scriptGzipBytes: number;
  stylesheetGzipBytes: number;
}

function page(script: string, stylesheet: string): string {
  return [
    "<!doctype html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="referrer" content="no-referrer">',
    "<title>Parley</title>",
    `<link rel="stylesheet" href="/${stylesheet}">`,
    `<script type="module" src="/${script}"></script>`,
    "</head>",
    '<body><div id="app"><noscript>Parley needs JavaScript.</noscript></div></body>',
    "</html>",
    "",
  ].join("\n");
}

/** Builds the app into `outDir` (default dist/web-app), replacing what was there. */
export async function buildWebApp(outDir: string = DEFAULT_WEB_APP_OUT): Promise<WebAppBuild> {
  await rm(outDir, { recursive: true, force: true });
  await mkdir(path.join(outDir, "assets"), { recursive: true });
  const result = await esbuild.build({
    absWorkingDir: here,
    entryPoints: { app: path.join(here, "main.tsx") },
    outdir: path.join(outDir, "assets"),
    entryNames: "[name]-[hash]",
    assetNames: "[name]-[hash]",
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    target: ["es2022", "chrome110", "firefox110", "safari16"],
    jsx: "automatic",
    jsxImportSource: "preact",
    tsconfig: path.join(here, "tsconfig.json"),
    metafile: true,
    legalComments: "none",
    define: { "process.env.NODE_ENV": '"production"' },
    logLevel: "warning",
  });
  const outputs = Object.keys(result.metafile.outputs).map((file) => path.relative(outDir, path.resolve(here, file)).split(path.sep).join("/"));
  const script = outputs.find((file) => file.endsWith(".js"));
  const stylesheet = outputs.find((file) => file.endsWith(".css"));
  if (!script || !stylesheet) throw new Error(`the build wrote no script or stylesheet: ${outputs.join(", ")}`);
  await writeFile(path.join(outDir, "index.html"), page(script, stylesheet));
  const js = await readFile(path.join(outDir, script));
  const css = await readFile(path.join(outDir, stylesheet));
  return {
    outDir,
    script,
    stylesheet,
    scriptBytes: js.length,
    scriptGzipBytes: gzipSync(js, { level: 9 }).length,
    stylesheetGzipBytes: gzipSync(css, { level: 9 }).length,
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const built = await buildWebApp(process.argv[2] ? path.resolve(process.argv[2]) : undefined);
  const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  console.log(
    `web app built into ${path.relative(process.cwd(), built.outDir) || "."}: ${built.script} ${kib(built.scriptBytes)} (${kib(built.scriptGzipBytes)} gzipped), ` +
      `${built.stylesheet} (${kib(built.stylesheetGzipBytes)} gzipped)`,
  );
}
