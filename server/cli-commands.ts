// The commands `parley` implements itself: `serve` runs the server on its embedded defaults (or
// the environment's settings), `token` mints a development access token, `support` grants and
// revokes operator support access. server/cli.ts loads this module only when one of them runs.

import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import type { Role } from "../protocol/index.ts";
import { startServer } from "./app.ts";
import { issueSupportToken, mintToken } from "./auth/tokens.ts";
import { ConfigError, loadConfig } from "./platform/config.ts";
import { createLogger } from "./platform/logger.ts";
import { installProcessPolicy } from "./platform/process-policy.ts";
import { STARTUP_REFUSED_EXIT_CODE, StartupRefusal } from "./platform/startup-refusal.ts";
import { StoreError } from "./sql/store-error.ts";
import { withCliContext } from "./cli/cli-context.ts";

/** Parses a duration like 90, 90s, 15m, 1h or 7d into seconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+)([smhd]?)$/.exec(text.trim());
  if (!match) throw new ConfigError(`invalid duration "${text}" (use e.g. 90s, 15m, 1h, 7d)`);
  const unit = { "": 1, s: 1, m: 60, h: 3600, d: 86400 }[match[2] as "" | "s" | "m" | "h" | "d"];
  return Number(match[1]) * unit;
}

export async function serve(args: string[]): Promise<void> {
  // No options: every setting comes from the environment. Anything given is a mistake, not ignored.
  parseArgs({ args, options: {}, strict: true, allowPositionals: false });
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  let server: Awaited<ReturnType<typeof startServer>> | null = null;
  installProcessPolicy({ logger, shutdown: async () => server?.close(), shutdownTimeoutMs: config.shutdownTimeoutMs });
  try {
    server = await startServer(config, logger);
  } catch (error) {
    // A reason not to start (data directory or port in use, keyring missing) is said plainly,
    // with its own exit code; anything else is a failure (exit 1): one line on stderr, its stack
    // in the log.
    if (error instanceof StartupRefusal || (error instanceof StoreError && error.code === "unavailable")) {
      logger.fatal({ err: error }, "refusing to start");
      process.stderr.write(`parley: refusing to start: ${error.message}\n`);
      process.exit(STARTUP_REFUSED_EXIT_CODE);
    }
    logger.fatal({ err: error }, "failed to start");
    throw error;
  }
  const running = server;
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    const deadline = setTimeout(() => {
      logger.error("shutdown timed out; exiting");
      process.exit(1);
    }, config.shutdownTimeoutMs);
    deadline.unref();
    running.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

export async function token(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      user: { type: "string" },
      org: { type: "string" },
      conversation: { type: "string", multiple: true },
      role: { type: "string", default: "writer" },
      ttl: { type: "string", default: "1h" },
      "data-dir": { type: "string" },
    },
    strict: true,
  });
  if (!values.user || !values.org || !values.conversation?.length) {
    throw new ConfigError("token needs --user, --org and at least one --conversation");
  }
  if (values.role !== "writer" && values.role !== "observer") throw new ConfigError("--role must be writer or observer");
  const { user, org, conversation, role, ttl } = values;
  await withCliContext({ dataDir: values["data-dir"] }, async (parts) => {
    const keys = await parts.keys();
    const conversations = Object.fromEntries(conversation.map((c) => [c, role as Role]));
    const jwt = await mintToken(keys, parts.config.tokens, {
      user,
      org,
      conversations,
      ttlSeconds: parseDuration(ttl),
    }, parts.now);
    process.stdout.write(`${jwt}\n`);
  });
}

const MAX_SUPPORT_SECONDS = 8 * 3600;

export async function support(args: string[]): Promise<void> {
  const [action, ...rest] = args;
  if (action !== "grant" && action !== "revoke") throw new ConfigError("usage: parley support grant|revoke ... (see parley support --help)");
  const { values } = parseArgs({
    args: rest,
    options: {
      operator: { type: "string" },
      conversation: { type: "string" },
      reason: { type: "string" },
      ttl: { type: "string", default: "1h" },
      grant: { type: "string" },
      "data-dir": { type: "string" },
    },
    strict: true,
  });
  await withCliContext({ dataDir: values["data-dir"], logLevel: "warn" }, async (parts) => {
    const { config } = parts;
    const { directory } = await parts.directory();
    const audit = await parts.audit();
    if (action === "revoke") {
      if (!values.grant) throw new ConfigError("support revoke needs --grant");
      const grant = await directory.getSupportGrant(values.grant);
      const parties = grant ? await audit.recorder.conversationParties(directory, grant.conversationId) : [];
      const event = { action: "support.revoked", actor: `operator:${grant?.operator ?? ""}`, target: values.grant, details: { conversation: grant?.conversationId ?? "" } } as const;
      // Revoked and recorded in every party's chain in one transaction.
      if (!grant || !(await audit.recorder.recordWith(directory, "revokeSupportGrant", [values.grant, parts.now()], parties, event))) {
        throw new ConfigError(`no live grant ${values.grant}`);
      }
      process.stdout.write(`revoked ${values.grant}\n`);
      return;
    }
    if (!values.operator || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(values.operator)) {
      throw new ConfigError("--operator must be 1-64 letters, digits, dots, dashes or underscores");
    }
    if (!values.conversation) throw new ConfigError("support grant needs --conversation");
    if (!values.reason || values.reason.trim().length < 10) throw new ConfigError("--reason must say why (at least 10 characters)");
    const ttlSeconds = parseDuration(values.ttl);
    if (ttlSeconds < 1 || ttlSeconds > MAX_SUPPORT_SECONDS) throw new ConfigError("--ttl must be at most 8h");
    const keys = await parts.keys();
    const grantedAt = parts.now();
    const grant = {
      id: `sup_${randomUUID().replaceAll("-", "")}`,
      operator: values.operator,
      conversationId: values.conversation,
      reason: values.reason.trim(),
      grantedAt,
      expiresAt: grantedAt + ttlSeconds * 1000,
    };
    // Stored and recorded in every party's chain in one transaction, before the token exists.
    await audit.recorder.recordWith(directory, "recordSupportGrant", [grant], await audit.recorder.conversationParties(directory, grant.conversationId), {
      action: "support.granted",
      actor: `operator:${grant.operator}`,
      target: grant.id,
      details: { conversation: grant.conversationId, reason: grant.reason, expiresAt: grant.expiresAt },
    });
    const jwt = await issueSupportToken(keys, config.tokens, { ...grant, ttlSeconds }, parts.now);
    process.stderr.write(`grant ${grant.id} recorded; expires ${new Date(grant.expiresAt).toISOString()}\n`);
    process.stdout.write(`${jwt}\n`);
  });
}
