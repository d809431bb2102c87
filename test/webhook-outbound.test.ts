// The outbound side of webhooks without a Parley server: which addresses count as public, that
// every resolved address of a host is checked (and checked again at delivery, so a DNS answer
// that changes to an internal address is refused), timeouts, and signature verification.

import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { isPublicAddress } from "../server/webhooks/address-policy.ts";
import { checkUrlShape, resolveTarget, SafeHttpTransport, WebhookUrlError } from "../server/webhooks/outbound-http.ts";
import { signPayload, verifySignature } from "../server/webhooks/signature.ts";

describe("address policy", () => {
  it.each([
    "127.0.0.1",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.0.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "198.18.0.1",
    "::1",
    "::",
    "fe80::1",
    "fd12:3456::1",
    "ff02::1",
    "::ffff:10.0.0.1",
    "::ffff:7f00:1",
    "64:ff9b::a00:1",
    "2002:7f00:1::",
    "2001:db8::1",
    "not-an-ip",
  ])("refuses %s", (address) => {
    expect(isPublicAddress(address)).toBe(false);
  });

  it.each(["93.184.215.14", "1.1.1.1", "8.8.8.8", "2606:4700:4700::1111", "::ffff:93.184.215.14", "2a00:1450:4001:80b::200e"])("allows %s", (address) => {
    expect(isPublicAddress(address)).toBe(true);
  });
});

describe("URL checks", () => {
  it("checks every address a host resolves to", async () => {
    const url = checkUrlShape("https://hooks.partner.example/parley", { allowPrivate: false });
    const resolve = async () => [
      { address: "93.184.215.14", family: 4 },
      { address: "10.0.0.7", family: 4 },
    ];
    await expect(resolveTarget(url, { allowPrivate: false, resolve })).rejects.toThrow(/10\.0\.0\.7/);
    await expect(resolveTarget(url, { allowPrivate: true, resolve })).resolves.toHaveLength(2);
  });

  it("refuses a host that does not resolve", async () => {
    const url = checkUrlShape("https://nowhere.invalid/", { allowPrivate: false });
    const resolve = async () => {
      throw new Error("ENOTFOUND");
    };
    await expect(resolveTarget(url, { allowPrivate: false, resolve })).rejects.toBeInstanceOf(WebhookUrlError);
  });

  it("refuses at delivery a host whose DNS answer changed to an internal address", async () => {
    let answer = "93.184.215.14";
    const transport = new SafeHttpTransport({ allowPrivate: false, timeoutMs: 1000, userAgent: "test", resolve: async () => [{ address: answer, family: 4 }] });
    answer = "169.254.169.254";
    const result = await transport.post({ url: "https://rebinding.partner.example/hook", body: "{}", headers: {} });
    expect(result).toMatchObject({ ok: false, status: null });
    expect(result.error).toMatch(/refused: .*169\.254\.169\.254/);
    transport.close();
  });
});

describe("delivery requests", () => {
  it("connects to the checked address and gives up after the timeout", async () => {
    const server = createServer(() => {
      // never answers
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    // The host name resolves (through the test resolver) to the address that was checked.
    const transport = new SafeHttpTransport({ allowPrivate: true, timeoutMs: 200, userAgent: "test", resolve: async () => [{ address: "127.0.0.1", family: 4 }] });
    const started = Date.now();
    const result = await transport.post({ url: `http://receiver.test:${port}/hook`, body: "{}", headers: {} });
    expect(result).toMatchObject({ ok: false, status: null });
    expect(result.error).toMatch(/timed out/);
    expect(Date.now() - started).toBeLessThan(1500);
    transport.close();
    server.closeAllConnections();
    server.close();
  });
});

describe("signatures", () => {
  it("verifies with the secret and the timestamp inside the replay window", () => {
    const body = JSON.stringify({ id: "evt_1" });
    const header = signPayload("whsec_abc", body, 1_900_000_000);
    expect(verifySignature("whsec_abc", body, header, 1_900_000_100)).toBe(true);
    expect(verifySignature("whsec_abc", body, header, 1_900_000_301)).toBe(false);
    expect(verifySignature("whsec_abc", body, header.replace(/t=\d+/, "t=1900000100"), 1_900_000_100)).toBe(false);
    expect(verifySignature("whsec_abc", body, "v1=00", 1_900_000_000)).toBe(false);
  });
});
