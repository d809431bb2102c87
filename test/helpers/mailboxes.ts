// Every place the mail of this test file's servers can land: the outbox folder of each server it
// started (the embedded default, `<dataDir>/outbox/*.eml`) and each SMTP sink it runs. Helpers
// that need a mailed link (the sign-up confirmation) read it from whichever received the mail, as
// the person would, without every test having to say where its server's mail goes.

import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { parseMail } from "./mime-reader.ts";
import { waitUntil } from "./wait.ts";

/** One mail as a helper looks at it; `id` is unique among all mailboxes of this test file. */
export interface ReceivedMail {
  id: string;
  to: string[];
  subject: string;
  text: string;
}

type MailSource = () => Promise<ReceivedMail[]>;

const sources = new Set<MailSource>();
const outboxes = new Set<string>();

/** Adds a source of received mail (an SMTP sink); the returned function removes it. */
export function addMailSource(source: MailSource): () => void {
  sources.add(source);
  return () => sources.delete(source);
}

/** Makes the outbox of a server's data directory readable to the helpers (idempotent). */
export function addOutbox(dataDir: string): void {
  const dir = path.join(dataDir, "outbox");
  if (outboxes.has(dir)) return;
  outboxes.add(dir);
  addMailSource(() => outboxMail(dir));
}

async function outboxMail(dir: string): Promise<ReceivedMail[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const mails: ReceivedMail[] = [];
  for (const name of names.filter((n) => n.endsWith(".eml")).sort()) {
    // A file being written (or removed by the server's retention) is read on the next look.
    const raw = await readFile(path.join(dir, name), "utf8").catch(() => "");
    if (!raw.includes("\r\n\r\n")) continue;
    const mail = parseMail(raw, "", []);
    mails.push({ id: path.join(dir, name), to: [mail.headers.get("to") ?? ""], subject: mail.subject, text: mail.text });
  }
  return mails;
}

/** Everything received so far, in every mailbox. */
export async function allMail(): Promise<ReceivedMail[]> {
  return (await Promise.all([...sources].map((source) => source()))).flat();
}

/** The ids of everything received so far: pass to {@link waitForNewMail} to see only what comes after. */
export async function mailSeen(): Promise<Set<string>> {
  return new Set((await allMail()).map((mail) => mail.id));
}

/** The first mail not in `seen` that matches, in any mailbox; fails after `timeoutMs`. */
export async function waitForNewMail(seen: Set<string>, matches: (mail: ReceivedMail) => boolean, timeoutMs = 15_000): Promise<ReceivedMail> {
  let found: ReceivedMail | undefined;
  await waitUntil(
    async () => {
      found = (await allMail()).find((m) => !seen.has(m.id) && matches(m));
      return found !== undefined;
    },
    { what: `a new matching mail in ${sources.size} mailbox(es)`, timeout: timeoutMs },
  );
  return found as ReceivedMail;
}
