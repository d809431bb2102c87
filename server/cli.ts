// The `parley` command: answers --help, checks the command, then loads only the module that
// runs it (help and usage errors stay fast and touch nothing). Exit codes: 0 ok, 1 runtime
// failure, 2 bad usage or configuration, 3 `serve` refused to start (data directory or port in
// use, keyring missing). Whatever fails, the operator reads one line, never a stack trace.

import { COMMAND_NAMES, commandHelp, isCommand, overviewHelp, usageErrorLine, wantsHelp } from "./cli-help.ts";
import { ConfigError } from "./platform/config.ts";

async function main(argv: string[]): Promise<void> {
  const [command = "serve", ...rest] = argv;
  if (command === "help" || command === "--help" || command === "-h") {
    const topic = rest[0];
    if (topic !== undefined && !isCommand(topic)) throw new ConfigError(`unknown command "${topic}" (commands: ${COMMAND_NAMES.join(", ")})`);
    process.stdout.write(topic === undefined ? overviewHelp() : commandHelp(topic));
    return;
  }
  if (!isCommand(command)) throw new ConfigError(`unknown command or option "${command}" (see parley --help)`);
  // Help before anything runs: `parley serve --help` must not start a server.
  if (wantsHelp(rest)) {
    process.stdout.write(commandHelp(command));
    return;
  }
  switch (command) {
    case "serve":
      return (await import("./cli-commands.ts")).serve(rest);
    case "token":
      return (await import("./cli-commands.ts")).token(rest);
    case "support":
      return (await import("./cli-commands.ts")).support(rest);
    case "audit": {
      // The ledger (lifecycle) is wired in here: audit must not import the layer that records into it.
      const { destroyedConversations } = await import("./lifecycle/deletion-ledger.ts");
      process.exitCode = await (await import("./cli/audit-command.ts")).auditCommand(rest, { destroyedConversations });
      return;
    }
    case "backup":
      return (await import("./cli/backup-command.ts")).backupCommand(rest);
    case "restore":
      return (await import("./cli/backup-command.ts")).restoreCommand(rest);
    case "ledger":
      return (await import("./cli/backup-command.ts")).ledgerCommand(rest);
    case "user":
      return (await import("./cli/user-command.ts")).userCommand(rest);
    case "keys":
      return (await import("./cli/keys-command.ts")).keysCommand(rest);
    case "mail":
      return (await import("./cli/mail-command.ts")).mailCommand(rest);
    default:
      throw new ConfigError(`"${command}" has help but no implementation`);
  }
}

/**
 * A failure as one line for the operator: the message, its line breaks folded. The stack is for a
 * bug report, not for the operator's terminal: PARLEY_LOG_LEVEL=debug (or trace) adds it.
 */
function failureLine(error: unknown): string {
  const message = error instanceof Error ? error.message || error.name : String(error);
  return `parley: ${message.replace(/\s*\n\s*/g, " ").trim()}`;
}

const argv = process.argv.slice(2);
main(argv).catch((error: unknown) => {
  const usage = usageErrorLine(argv[0] ?? "serve", error);
  if (usage !== null || error instanceof ConfigError) {
    process.stderr.write(`${usage ?? `parley: ${(error as Error).message}`}\n`);
    process.exit(2);
  }
  process.stderr.write(`${failureLine(error)}\n`);
  if (/^(debug|trace)$/.test(process.env.PARLEY_LOG_LEVEL ?? "") && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  process.exit(1);
});
