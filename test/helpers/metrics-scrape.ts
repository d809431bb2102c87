// Reads /metrics as Prometheus would: the text exposition over HTTP, and one series' value by
// its exact name and labels.

/** GETs a metrics address (with the bearer token when given). */
export async function scrape(url: string, token?: string): Promise<{ status: number; type: string; text: string }> {
  const response = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: response.status, type: response.headers.get("content-type") ?? "", text: await response.text() };
}

/** The value of `series` (name plus labels, exactly as exposed) in an exposition. */
export function seriesValue(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  if (!line) throw new Error(`no series ${series}`);
  return Number(line.slice(series.length + 1));
}
