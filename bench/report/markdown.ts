// Renders a suite report as markdown: one table of scenario × server (deliveries/s, loss,
// latency, CPU, RSS, ratio to the relay; the cluster rows compare two nodes with one), the
// step-mode table in --full, and the HTTP benchmarks.

import type { CaseResult } from "../suite/result.ts";
import type { SuiteReport } from "../suite/suite.ts";

const MiB = 1024 * 1024;

function num(value: number | undefined, digits = 0): string {
  return value === undefined || !Number.isFinite(value) ? "—" : value.toFixed(digits);
}

function ms(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return "—";
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

function ratio(value: number | undefined, base: number | undefined): string {
  if (value === undefined || base === undefined || !Number.isFinite(value) || !Number.isFinite(base) || base === 0) return "—";
  return `×${(value / base).toFixed(value / base >= 10 ? 0 : 1)}`;
}

function vsRelay(row: CaseResult, relay: CaseResult | undefined): string {
  if (row.server === "relay" || !relay || relay === row || relay.status !== "ok" || row.status !== "ok") return "";
  if (row.fanout && relay.fanout) {
    const versus = [
      `deliv ${ratio(row.fanout.deliveriesPerSec, relay.fanout.deliveriesPerSec)}`,
      `p99 ${ratio(row.fanout.latency.p99, relay.fanout.latency.p99)}`,
      `CPU ${ratio(row.server_usage?.cpuPercent, relay.server_usage?.cpuPercent)}`,
    ].join(" · ");
    return relay.scenario === "cluster" ? `vs 1 node: ${versus}` : versus;
  }
  // A ratio to a figure lost in the noise would be noise too.
  if (row.idle && relay.idle && row.idle.bytesPerConnection > 0 && relay.idle.bytesPerConnection > 2 * relay.idle.noiseBytesPerConnection) {
    return `mem/conn ${ratio(row.idle.bytesPerConnection, relay.idle.bytesPerConnection)}`;
  }
  return "";
}

function note(row: CaseResult): string {
  const parts: string[] = [];
  if (row.idle) {
    const i = row.idle;
    parts.push(
      `**${num(i.bytesPerConnection / 1024, 1)} ± ${num(i.noiseBytesPerConnection / 1024, 1)} KiB per idle connection** (${i.connected} connected in ${num(i.connectMs / 1000, 1)} s, RSS after GC ${num(i.rssBeforeBytes / MiB)} → ${num(i.rssAfterBytes / MiB)} MiB)`,
    );
  }
  if (row.join) {
    const j = row.join;
    parts.push(`**all ${j.synced} synced in ${num(j.allSyncedMs / 1000, 1)} s**; latency columns = per-client sync time`);
    if (j.failed > 0) parts.push(`${j.failed} failed`);
  }
  if (row.node_usage) {
    const perNode = row.node_usage.map((u, i) => `node ${"abcdefgh"[i]} CPU ${num(u.cpuPercent)}%, RSS ${num(u.rssPeakBytes / MiB)} MiB`);
    parts.push(`${perNode.join(", ")} (CPU and RSS columns: the sum)`);
  }
  if (row.services) {
    const sv = row.services;
    const commands = Object.entries(sv.redisByCommand)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 4)
      .map(([command, calls]) => `${command} ${num(calls, 2)}`);
    parts.push(
      `per committed update (${sv.updates} in the window): ${num(sv.commitsPerUpdate, 3)} group commits (Postgres transactions); Redis ${num(sv.redisPerUpdate, 2)} calls (${commands.join(", ")}); Postgres stats (flushed late, lower bounds): ${num(sv.pgCommitsPerUpdate, 2)} commits, ${num(sv.pgRowsWrittenPerUpdate, 2)} rows written, ${num(sv.pgIndexScansPerUpdate, 2)} index scans`,
    );
  }
  if (row.note) parts.push(row.note.replace(/\|/g, "/"));
  return parts.join("; ");
}

function rowCells(row: CaseResult, relay: CaseResult | undefined): string[] {
  const f = row.fanout;
  const j = row.join;
  const latency = f?.latency ?? j?.syncTime;
  const rate = f ? num(f.deliveriesPerSec) : j ? `${num(j.synced / (j.allSyncedMs / 1000), 1)} joins/s` : "—";
  return [
    row.scenario,
    row.nodes ? `${row.server} ×${row.nodes} node${row.nodes > 1 ? "s" : ""}` : row.server,
    row.load || "—",
    rate,
    f ? String(f.loss) : j ? String(j.failed) : "—",
    ms(latency?.p50),
    ms(latency?.p99),
    ms(latency?.max),
    f?.ack ? ms(f.ack.p99) : "—",
    num(row.server_usage?.cpuPercent),
    num((row.server_usage?.rssPeakBytes ?? Number.NaN) / MiB),
    num(row.generator_usage?.cpuPercent),
    num(row.other_cpu_percent),
    vsRelay(row, relay),
    row.status === "ok" ? note(row) : row.note,
  ];
}

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

export function renderMarkdown(report: SuiteReport): string {
  const out: string[] = [];
  out.push(`# Parley broadcast-path benchmark (${report.mode})`);
  out.push("");
  out.push(
    `\`${report.command}\` · ${report.startedAt} · commit ${report.commit} · ${report.machine.cpus} cores, ${report.machine.memoryGiB} GiB, Node ${report.machine.node} · load average at start ${report.machine.loadAverageAtStart.map((l) => l.toFixed(2)).join(" ")} · took ${num(report.durationMs / 1000)} s${report.config.priority ? ` · --priority: ${report.config.priority}` : ""}`,
  );
  out.push("");
  const t = report.config.timing;
  out.push(
    `Open loop: each writer sends pre-built Yjs updates on a fixed schedule; warm-up ${t.warmupMs} ms, measured ${t.measureMs} ms, drain ≤ ${t.drainMs} ms. ` +
      "Latency = send → receive at every other client (ms); loss = expected − received deliveries after the drain. " +
      "CPU = % of one core over the measured window; RSS = server peak. gen = load generator CPU; other = CPU used by everything else on the machine (noise).",
  );
  out.push("");
  const header = ["scenario", "server", "load", "deliveries/s", "loss", "p50", "p99", "max", "ack p99", "CPU %", "RSS MiB", "gen %", "other %", "vs relay", "note"];
  // What a row is compared with: the relay; for the cluster, Parley on one node at the same load.
  const baseOf = (scenario: string) =>
    report.rows.find((r) => r.scenario === scenario && (scenario === "cluster" ? r.nodes === 1 : r.server === "relay"));
  out.push(table(header, report.rows.map((row) => rowCells(row, baseOf(row.scenario)))));
  if (report.steps.length > 0) {
    out.push("");
    out.push("## Highest sustained rate, chatty scenario (zero loss, p99 < 100 ms)");
    out.push("");
    out.push(
      table(
        ["server", "rate per writer", "updates/s", "deliveries/s", "stopped", "note"],
        report.steps.map((s) => [
          s.server,
          s.sustainedRatePerWriter > 0 ? `${s.sustainedRatePerWriter}/s` : "none",
          num(s.sustainedUpdatesPerSec),
          num(s.sustainedDeliveriesPerSec),
          s.stoppedBecause || "every step passed",
          s.generatorLimited ? "generator-bound on a passing step: lower bound" : "",
        ]),
      ),
    );
  }
  out.push("");
  out.push("## HTTP (autocannon)");
  out.push("");
  out.push(
    "A fresh Parley (embedded defaults, its own process); accounts and conversations made through the API before the clock. " +
      "req/s = 2xx answers per second; latency in ms; errors = connection errors + timeouts; CPU = server, % of one core.",
  );
  out.push("");
  out.push(
    table(
      ["benchmark", "route", "connections", "req/s", "p50", "p99", "max", "errors", "non-2xx", "CPU %", "RSS MiB", "note"],
      report.http.map((h) =>
        h.status === "ok"
          ? [
              h.name,
              h.route,
              String(h.connections),
              num(h.requestsPerSec),
              ms(h.latencyMs?.p50),
              ms(h.latencyMs?.p99),
              ms(h.latencyMs?.max),
              String((h.errors ?? 0) + (h.timeouts ?? 0)),
              String(h.non2xx),
              num(h.serverCpuPercent),
              num((h.serverRssPeakBytes ?? Number.NaN) / MiB),
              h.note,
            ]
          : [h.name, h.route, "—", "—", "—", "—", "—", "—", "—", "—", "—", h.note],
      ),
    ),
  );
  out.push("");
  return out.join("\n");
}
