// The process logger must never write a secret: tokens, passwords, authorisation headers and
// URLs (which may carry invitation tokens) are censored wherever they appear in a log object.

import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../server/platform/logger.ts";

function capture(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return { stream, text: () => chunks.join("") };
}

describe("logger", () => {
  it("redacts tokens, passwords, authorisation headers and URLs, and keeps the rest", () => {
    const out = capture();
    const logger = createLogger("info", out.stream);
    logger.info(
      {
        token: "tok-SECRET-1",
        session: { token: "tok-SECRET-2", password: "pw-SECRET-3" },
        accessToken: "tok-SECRET-4",
        refreshToken: "tok-SECRET-5",
        req: { headers: { authorization: "Bearer tok-SECRET-6", cookie: "sid=SECRET-7" } },
        url: "https://parley.example/invite/SECRET-8",
        conversation: "c_visible",
      },
      "signed in",
    );
    const line = out.text();
    expect(line).not.toMatch(/SECRET/);
    expect(line).toContain("[redacted]");
    expect(line).toContain("c_visible");
    expect(JSON.parse(line)).toMatchObject({ service: "parley", msg: "signed in" });
  });
});
