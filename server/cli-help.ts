// What `parley --help` and `parley <command> --help` print: each command's synopsis, its options
// and an example. The CLI answers --help before running anything (`parley serve --help` starts no
// server) and turns parseArgs' errors into one line naming the option and where to look.

/** One command's help. */
interface CommandHelp {
  /** One line on what the command does. */
  summary: string;
  /** Synopsis lines, without the leading "parley ". */
  usage: string[];
  /** Option → what it means (the empty list: no options). */
  options: [string, string][];
  /** A command line to copy, and more when useful. */
  examples: string[];
  notes?: string[];
}

const DATA_DIR: [string, string] = ["--data-dir DIR", "the server's data directory (default PARLEY_DATA_DIR, else ./data)"];

const COMMANDS: Record<string, CommandHelp> = {
  serve: {
    summary: "start the server (the default command)",
    usage: ["serve"],
    options: [],
    examples: ["PORT=8787 PARLEY_DATA_DIR=./data parley serve"],
    notes: [
      "Every setting comes from the environment (README, Configuration): PORT, HOST, PARLEY_DATA_DIR,",
      "DATABASE_URL and REDIS_URL for several nodes, PARLEY_LOG_LEVEL, ... An invalid value stops the",
      "server with a message naming the variable. SIGTERM or SIGINT shuts down gracefully.",
    ],
  },
  token: {
    summary: "print a development access token signed with the server's key",
    usage: ["token --user U --org O --conversation C [--conversation C2 ...] [--role writer|observer] [--ttl 1h] [--data-dir DIR]"],
    options: [
      ["--user U", "the user the token names (required)"],
      ["--org O", "the user's organisation (required)"],
      ["--conversation C", "a conversation the token opens; repeat for more (at least one)"],
      ["--role writer|observer", "the role in every listed conversation (default writer)"],
      ["--ttl DURATION", "lifetime: 90s, 15m, 1h, 7d (default 1h)"],
      DATA_DIR,
    ],
    examples: ["parley token --user alice --org helpdesk --conversation ticket-42 --role writer"],
  },
  support: {
    summary: "grant or revoke an operator's read-only, time-limited support access",
    usage: [
      "support grant --operator NAME --conversation C --reason TEXT [--ttl 1h] [--data-dir DIR]",
      "support revoke --grant ID [--data-dir DIR]",
    ],
    options: [
      ["--operator NAME", "who gets access (1-64 letters, digits, . _ -)"],
      ["--conversation C", "the conversation to read"],
      ["--reason TEXT", "why (at least 10 characters; the customer sees it)"],
      ["--ttl DURATION", "how long, at most 8h (default 1h)"],
      ["--grant ID", "the grant to end (revoke)"],
      DATA_DIR,
    ],
    examples: [
      'parley support grant --operator pat --conversation cnv_123 --reason "ticket 42: sync stuck" --ttl 1h',
      "parley support revoke --grant sup_abc",
    ],
  },
  audit: {
    summary: "verify audit chains against the signed checkpoints, or an export offline; export an organisation's chain",
    usage: [
      "audit verify [--conversation ID | --org ID | --all] [--checkpoints FILE] [--data-dir DIR]",
      "audit verify --file EXPORT",
      "audit export --org ID [--out FILE] [--data-dir DIR]",
    ],
    options: [
      ["--conversation ID", "verify one conversation's chain"],
      ["--org ID", "verify one organisation's chain"],
      ["--all", "verify every chain"],
      ["--checkpoints FILE", "checkpoints kept outside Parley (GET /v1/audit/checkpoints) instead of the stored ones"],
      ["--file EXPORT", "a conversation or organisation export (GET .../audit/export, parley audit export), checked offline"],
      ["--out FILE", "export: where to write the organisation's chain (default: standard output)"],
      DATA_DIR,
    ],
    examples: ["parley audit verify --all --checkpoints kept.jsonl", "parley audit verify --file export.jsonl", "parley audit export --org org_123 --out org.jsonl"],
    notes: ["Exit code 0 when every chain verifies, 1 when one is broken (the first broken entry is named)."],
  },
  backup: {
    summary: "write or check an encrypted online backup (embedded databases, or with DATABASE_URL a pg_dump)",
    usage: ["backup FILE [--data-dir DIR]", "backup FILE --keyring KEYRING_FILE   (DATABASE_URL set)", "backup verify FILE [--data-dir DIR]"],
    options: [DATA_DIR, ["--keyring KEYRING_FILE", "Postgres: where the data keys go, apart from FILE (keep it briefly: crypto-shredding)"]],
    examples: [
      "parley backup /backups/parley-$(date +%F).pbk",
      "DATABASE_URL=postgres://… parley backup /backups/parley-$(date +%F).pbk --keyring /keyrings/parley-$(date +%F).pbk",
      "parley backup verify /backups/parley-2026-12-01.pbk",
    ],
    notes: [
      "Safe while the server runs. NOT in the backup: keyring.db and the keys directory (back them up apart).",
      "Postgres: pg_dump of the schema DATABASE_URL's search_path names and of its data keys, from one snapshot, with every table's row count.",
    ],
  },
  restore: {
    summary: "restore a backup into a stopped server's data directory (or, with DATABASE_URL, an empty schema), then replay the deletion ledger",
    usage: ["restore FILE [--data-dir DIR]", "restore FILE --keyring KEYRING_FILE   (DATABASE_URL set)"],
    options: [DATA_DIR, ["--keyring KEYRING_FILE", "Postgres: the keyring file written with FILE"]],
    examples: ["parley restore /backups/parley-2026-12-01.pbk --data-dir /srv/parley"],
    notes: [
      "The current databases are moved to pre-restore-<time>/, never deleted.",
      "Postgres: only into an empty schema (a new database), in one transaction; every table's row count is checked before it commits.",
    ],
  },
  ledger: {
    summary: "destroy again what the deletion ledger records (after restoring Postgres); server stopped",
    usage: ["ledger replay [--data-dir DIR]"],
    options: [DATA_DIR],
    examples: ["parley ledger replay --data-dir /srv/parley"],
  },
  user: {
    summary: "erase a person's personal data; audit entries keep their id",
    usage: ["user delete --user ID --operator NAME [--data-dir DIR]"],
    options: [["--user ID", "the person to erase"], ["--operator NAME", "who does it (recorded in the audit chains)"], DATA_DIR],
    examples: ["parley user delete --user usr_123 --operator pat"],
  },
  keys: {
    summary: "rotate the master key: re-wrap every data key under a new one (no data rewritten)",
    usage: ["keys rotate-master [--data-dir DIR]"],
    options: [DATA_DIR],
    examples: ["parley keys rotate-master --data-dir /srv/parley"],
    notes: ["May run while servers run, provided every node reads the keys directory."],
  },
  mail: {
    summary: "make a DKIM key for outgoing mail and print the DKIM, SPF and DMARC records",
    usage: [
      "mail dkim-keygen --domain D [--selector S] [--out FILE] [--data-dir DIR]",
      "mail dkim-records --domain D [--selector S] [--key FILE] [--data-dir DIR]",
    ],
    options: [
      ["--domain D", "the mail domain (required)"],
      ["--selector S", 'the DKIM selector (default "parley")'],
      ["--out FILE", "where dkim-keygen writes the key (default <keysDir>/dkim-S.pem, mode 0600)"],
      ["--key FILE", "the existing key dkim-records reads"],
      DATA_DIR,
    ],
    examples: ["parley mail dkim-keygen --domain helpdesk.example"],
  },
};

/** The commands, in the order `parley --help` lists them. */
export const COMMAND_NAMES = Object.keys(COMMANDS);

/** True for a command `parley` knows. */
export function isCommand(name: string): boolean {
  return Object.hasOwn(COMMANDS, name);
}

/** True when the arguments ask for help (before any `--` that ends the options). */
export function wantsHelp(args: string[]): boolean {
  const end = args.indexOf("--");
  return (end === -1 ? args : args.slice(0, end)).some((arg) => arg === "--help" || arg === "-h");
}

/** `parley <command> --help`. */
export function commandHelp(name: string): string {
  const help = COMMANDS[name];
  const width = Math.max(0, ...help.options.map(([option]) => option.length));
  const lines = [`parley ${name}: ${help.summary}`, "", "usage:", ...help.usage.map((u) => `  parley ${u}`), ""];
  if (help.options.length === 0) lines.push("options: none", "");
  else lines.push("options:", ...help.options.map(([option, text]) => `  ${option.padEnd(width)}  ${text}`), "");
  lines.push(help.examples.length === 1 ? "example:" : "examples:", ...help.examples.map((e) => `  ${e}`));
  if (help.notes) lines.push("", ...help.notes);
  return `${lines.join("\n")}\n`;
}

/** `parley --help`. */
export function overviewHelp(): string {
  const width = Math.max(...COMMAND_NAMES.map((name) => name.length));
  return [
    "parley: realtime collaboration server (Yjs over WebSockets, durable and audited writes)",
    "",
    "usage: parley <command> [options]        (no command: serve)",
    "",
    "commands:",
    ...COMMAND_NAMES.map((name) => `  ${name.padEnd(width)}  ${COMMANDS[name].summary}`),
    "",
    "parley <command> --help shows a command's options and an example.",
    "example:",
    "  parley token --user alice --org helpdesk --conversation ticket-42",
    "",
  ].join("\n");
}

/** One line for a command-line mistake, ending in where to look; null when `error` is not one. */
export function usageErrorLine(command: string, error: unknown): string | null {
  const { code, message } = error as { code?: string; message?: string };
  if (typeof code !== "string" || !code.startsWith("ERR_PARSE_ARGS") || typeof message !== "string") return null;
  const where = isCommand(command) ? `parley ${command} --help` : "parley --help";
  const unknown = /^Unknown option '([^']+)'/.exec(message);
  if (unknown) return `parley ${command}: unknown option '${unknown[1]}' (see ${where})`;
  const positional = /^Unexpected argument '([^']+)'/.exec(message);
  if (positional) return `parley ${command}: unexpected argument '${positional[1]}' (see ${where})`;
  return `parley ${command}: ${message.split(". ")[0]} (see ${where})`;
}
