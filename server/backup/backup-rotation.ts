// Which scheduled backups to keep: the newest of each of the last N days, N ISO weeks and N
// months (grandfather-father-son), counted over the backups that exist. A pure function over
// file names and times, so the policy is tested without a clock or a disk.

/** How many of each to keep. */
export interface RotationCounts {
  daily: number;
  weekly: number;
  monthly: number;
}

/** A backup as the rotation sees it. */
export interface RotatedBackup {
  name: string;
  /** When it was taken, ms since the epoch (UTC). */
  at: number;
}

const day = (at: number) => new Date(at).toISOString().slice(0, 10);
const month = (at: number) => new Date(at).toISOString().slice(0, 7);
/** ISO week: the Thursday of the week decides its year. */
function week(at: number): string {
  const d = new Date(at);
  const thursday = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 3 - ((d.getUTCDay() + 6) % 7)));
  const firstThursday = new Date(Date.UTC(thursday.getUTCFullYear(), 0, 4));
  const n = 1 + Math.round((thursday.getTime() - firstThursday.getTime()) / 604_800_000);
  return `${thursday.getUTCFullYear()}-W${String(n).padStart(2, "0")}`;
}

/** The names to keep (every other one may be deleted). */
export function backupsToKeep(backups: readonly RotatedBackup[], counts: RotationCounts): Set<string> {
  const newestFirst = [...backups].sort((a, b) => b.at - a.at);
  const keep = new Set<string>();
  for (const [period, count] of [
    [day, counts.daily],
    [week, counts.weekly],
    [month, counts.monthly],
  ] as const) {
    const seen = new Set<string>();
    for (const backup of newestFirst) {
      const key = period(backup.at);
      if (seen.has(key)) continue;
      if (seen.size >= count) break;
      seen.add(key);
      keep.add(backup.name);
    }
  }
  return keep;
}
