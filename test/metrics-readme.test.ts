// README's Metrics table is what /metrics exposes: the same parley_* series, each with the type
// and labels the table gives, and nothing else besides prom-client's process metrics. A metric
// added to the server without a line in the README (or a line left for a removed one) fails here.

import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scrape } from "./helpers/metrics-scrape.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";

const METRICS_TOKEN = "metrics-token-for-the-readme-0123456789";

interface Family {
  type: string;
  labels: Set<string>;
}

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ env: { PARLEY_METRICS_TOKEN: METRICS_TOKEN } });
});
afterAll(async () => {
  await server?.cleanup();
});

/** The rows of README's "### Metrics" table, by series name. */
async function documented(): Promise<Map<string, Family>> {
  const readme = await readFile(path.join(import.meta.dirname, "../README.md"), "utf8");
  const section = readme.split(/^### Metrics$/m)[1]?.split(/^#{2,3} /m)[0] ?? "";
  const rows = new Map<string, Family>();
  for (const [, name, type, labels] of section.matchAll(/^\| `([a-z_:]+)` \| (\w+) \| ([^|]*) \|/gm)) {
    rows.set(name, { type, labels: new Set([...labels.matchAll(/`([a-z_]+)`/g)].map((m) => m[1])) });
  }
  return rows;
}

/** The families of an exposition, with the label names their samples carry (buckets' `le` aside). */
function exposed(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) families.set(name, { type, labels: new Set() });
  for (const [, series, labels] of text.matchAll(/^([a-z_:]+)\{([^}]*)\} /gm)) {
    const family = families.get(series) ?? families.get(series.replace(/_(bucket|sum|count)$/, ""));
    for (const [, label] of labels.matchAll(/([a-z_]+)="/g)) if (label !== "le") family?.labels.add(label);
  }
  return families;
}

describe("README's Metrics table", () => {
  it("lists exactly the parley_* series /metrics exposes, with their types and labels", async () => {
    const rows = await documented();
    const { status, text } = await scrape(`${server.httpUrl}/metrics`, METRICS_TOKEN);
    expect(status).toBe(200);
    const families = exposed(text);
    const ours = [...families.keys()].filter((name) => name.startsWith("parley_"));
    expect(ours.sort()).toEqual([...rows.keys()].sort());
    // Label names as declared (a counter never incremented shows no sample to read them from).
    const declared = new Map(server.server.metrics.registry.getMetricsAsArray().map((metric) => [(metric as unknown as { name: string }).name, (metric as unknown as { labelNames?: string[] }).labelNames ?? []]));
    for (const name of ours) {
      const row = rows.get(name) as Family;
      const family = families.get(name) as Family;
      expect(family.type, name).toBe(row.type);
      expect([...(declared.get(name) ?? [])].sort(), `${name} labels`).toEqual([...row.labels].sort());
      for (const label of family.labels) expect(row.labels, `${name} label ${label}`).toContain(label);
    }
    // Everything else is prom-client's process metrics, as the README says.
    expect([...families.keys()].filter((name) => !name.startsWith("parley_") && !/^(process|nodejs)_/.test(name))).toEqual([]);
  });
});
