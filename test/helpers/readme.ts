// Reads code blocks out of README.md, so tests run the examples exactly as a reader copies them.

import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const README = path.join(path.dirname(fileURLToPath(import.meta.url)), "../../README.md");

/** The one ```lang block of README.md whose first line contains `marker`; throws unless exactly one. */
export async function readReadmeBlock(lang: string, marker: string): Promise<string> {
  const text = await readFile(README, "utf8");
  const blocks = [...text.matchAll(/^```([a-z]*)\n([\s\S]*?)^```$/gm)]
    .filter(([, blockLang, body]) => blockLang === lang && body.split("\n", 1)[0].includes(marker))
    .map(([, , body]) => body);
  if (blocks.length !== 1) throw new Error(`README.md has ${blocks.length} \`\`\`${lang} blocks starting with "${marker}"`);
  return blocks[0];
}
