// `parley user delete --user ID`: an operator erases a person who cannot do it through the API
// (left the company, account lost). The same erasure as DELETE /v1/users/:id: directory, deletion
// ledger, an audit event in each of their organisations' chains. With a server running, its
// sockets of that person close at the latest when their short-lived access token expires.

import { parseArgs } from "node:util";
import { ConfigError } from "../platform/config.ts";
import { DirectoryError } from "../directory/directory.ts";
import { AccessEvents } from "../bus/access-events.ts";
import type { Store } from "../store/store.ts";
import { ConversationLifecycle } from "../lifecycle/conversation-lifecycle.ts";
import { DeletionLedger } from "../lifecycle/deletion-ledger.ts";
import { lifecycleAudit } from "../lifecycle/lifecycle-audit.ts";
import { withCliContext } from "./cli-context.ts";

export const USER_USAGE = `  parley user delete --user ID --operator NAME [--data-dir DIR]
                                    erase a person's personal data (email, name, password, 2FA,
                                    sessions, API keys, invitations); audit entries keep their id`;

/** Erasing a person touches no conversation data: a store that is never called. */
const NO_STORE = new Proxy({} as Store, {
  get() {
    throw new Error("person erasure does not use the log store");
  },
});

export async function userCommand(args: string[]): Promise<void> {
  const [action, ...rest] = args;
  const { values } = parseArgs({
    args: rest,
    options: { user: { type: "string" }, operator: { type: "string" }, "data-dir": { type: "string" } },
    strict: true,
  });
  if (action !== "delete") throw new ConfigError("usage: parley user delete --user ID --operator NAME");
  if (!values.user) throw new ConfigError("user delete needs --user");
  if (!values.operator || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(values.operator)) {
    throw new ConfigError("--operator must be 1-64 letters, digits, dots, dashes or underscores");
  }
  const user = values.user;
  const actor = `operator:${values.operator}`;
  await withCliContext({ dataDir: values["data-dir"], logLevel: "warn" }, async ({ config, logger, now, ...parts }) => {
    const ledger = await DeletionLedger.open(config.dataDir);
    const { directory } = await parts.directory();
    const audit = await parts.audit();
    const lifecycle = new ConversationLifecycle({
      directory,
      store: NO_STORE,
      ledger,
      accessEvents: new AccessEvents(),
      evict: () => {},
      audit: lifecycleAudit((org, event) => audit.recorder.recordOrgEvent(org, event), logger),
      // The erasure and its entries in one transaction, as the server does it.
      auditedChange: (op, args, org, event) => audit.recorder.recordWith(directory, op, args, org, event),
      logger,
      now,
    });
    await lifecycle.erasePerson(user, actor).catch((error: unknown) => {
      // Unknown person, or the last owner of an organisation with other members: the operator's to fix.
      if (error instanceof DirectoryError) throw new ConfigError(error.message);
      throw error;
    });
    process.stdout.write(`erased ${user}\n`);
  });
}
