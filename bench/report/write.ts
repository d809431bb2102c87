// Writes a suite report to <dir>/latest.json and <dir>/latest.md (via a temporary file and a
// rename, so an interrupted run never leaves half a report).

import { mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { SuiteReport } from "../suite/suite.ts";
import { renderMarkdown } from "./markdown.ts";

async function writeAtomically(path: string, content: string): Promise<void> {
  await writeFile(`${path}.tmp`, content);
  await rename(`${path}.tmp`, path);
}

/** Writes both files; returns the markdown. */
export async function writeReport(report: SuiteReport, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const markdown = renderMarkdown(report);
  await writeAtomically(join(dir, "latest.json"), `${JSON.stringify(report, null, 2)}\n`);
  await writeAtomically(join(dir, "latest.md"), markdown);
  return markdown;
}
