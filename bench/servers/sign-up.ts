// A benchmark's account, made as the README's journey makes one: the sign-up request, then the
// confirmation link from the server's outbox (the embedded default mailer writes each mail to
// `<dataDir>/outbox`), POSTed. Sign-up answers alike for every address, so the link is the only way in.

import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { parseMail } from "../../test/helpers/mime-reader.ts";

/** What a sign-up asks for. */
export interface BenchSignUp {
  email: string;
  password: string;
  name: string;
  organisation: string;
}

async function postJson(url: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** The confirmation link's path mailed to `email`, once the outbox holds it (the mail is written before the 202). */
async function confirmationPath(dataDir: string, email: string): Promise<string> {
  const outbox = path.join(dataDir, "outbox");
  for (let attempt = 0; attempt < 100; attempt++) {
    for (const name of await readdir(outbox).catch(() => [] as string[])) {
      const mail = parseMail(await readFile(path.join(outbox, name), "utf8"), "", []);
      const link = /\/signup\/[A-Za-z0-9_-]+/.exec(mail.text);
      if (mail.headers.get("to") === email && link) return link[0];
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no sign-up link for ${email} in ${outbox}`);
}

/** Signs up and confirms; returns the confirmation's answer (tokens, `user`, `organisation`). */
export async function signUpFromOutbox(base: string, dataDir: string, request: BenchSignUp): Promise<Record<string, unknown>> {
  const asked = await postJson(`${base}/v1/signup`, request);
  if (asked.status !== 202) throw new Error(`setup sign-up: ${asked.status} ${JSON.stringify(asked.body).slice(0, 200)}`);
  const confirmed = await postJson(`${base}${await confirmationPath(dataDir, request.email)}`, {});
  if (confirmed.status !== 201) throw new Error(`setup sign-up confirmation: ${confirmed.status} ${JSON.stringify(confirmed.body).slice(0, 200)}`);
  return confirmed.body;
}
