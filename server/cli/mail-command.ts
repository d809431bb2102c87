// The `parley mail` commands: `dkim-keygen` makes a DKIM signing key and prints the DNS records
// to publish (the key, and SPF and DMARC examples); `dkim-records` prints them again for a key
// that exists. The server signs with the key once PARLEY_DKIM_DOMAIN is set.

import { createPublicKey } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { ConfigError } from "../platform/config.ts";
import { assertDnsName, generateDkimKey, mailDnsRecords, writePrivateKey, zoneFileLines } from "../mail/dkim.ts";
import { cliConfig } from "./cli-context.ts";

export const MAIL_USAGE = `  parley mail dkim-keygen --domain D [--selector S] [--out FILE] [--data-dir DIR]
                                    new 2048-bit RSA DKIM key (0600; default <keysDir>/dkim-S.pem,
                                    selector "parley"); prints the DKIM, SPF and DMARC records
  parley mail dkim-records --domain D [--selector S] [--key FILE] [--data-dir DIR]
                                    prints the records again for an existing key`;

export async function mailCommand(args: string[]): Promise<void> {
  const [action, ...rest] = args;
  if (action !== "dkim-keygen" && action !== "dkim-records") throw new ConfigError(`usage:\n${MAIL_USAGE}`);
  const { values } = parseArgs({
    args: rest,
    options: {
      domain: { type: "string" },
      selector: { type: "string", default: "parley" },
      out: { type: "string" },
      key: { type: "string" },
      "data-dir": { type: "string" },
    },
    strict: true,
  });
  const domain = (values.domain ?? "").trim().toLowerCase();
  const selector = values.selector.trim();
  try {
    assertDnsName(domain, "--domain");
    assertDnsName(selector, "--selector");
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  // Only the configuration (where the keys live): nothing to open or close.
  const config = cliConfig({ dataDir: values["data-dir"] });
  const file = path.resolve(values.out ?? values.key ?? path.join(config.keysDir, `dkim-${selector}.pem`));
  let publicKeyPem: string;
  if (action === "dkim-keygen") {
    const key = generateDkimKey();
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    await writePrivateKey(file, key.privateKeyPem).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "EEXIST") throw new ConfigError(`${file} exists; use dkim-records to print its records, or --out elsewhere`);
      throw error;
    });
    publicKeyPem = key.publicKeyPem;
    process.stderr.write(
      `DKIM key written to ${file}\nSet PARLEY_DKIM_DOMAIN=${domain} PARLEY_DKIM_SELECTOR=${selector} PARLEY_DKIM_KEY_FILE=${file} (and PARLEY_MAIL_FROM at ${domain}),\nthen publish these records:\n`,
    );
  } else {
    const pem = await readFile(file, "utf8").catch(() => {
      throw new ConfigError(`cannot read the DKIM key ${file}`);
    });
    try {
      publicKeyPem = createPublicKey(pem).export({ type: "spki", format: "pem" }).toString();
    } catch {
      throw new ConfigError(`${file} holds no PEM key (a DKIM key from parley mail dkim-keygen)`);
    }
  }
  process.stdout.write(zoneFileLines(mailDnsRecords(domain, selector, publicKeyPem)));
}
