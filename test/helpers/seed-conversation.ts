// A conversation with a few messages, for tests that need something in the store (backups).

import { expect } from "vitest";
import type { apiClient } from "./http-client.ts";

/** Starts a conversation as `token` and posts `texts` to it; returns its id. */
export async function seedConversation(api: ReturnType<typeof apiClient>, token: string, title: string, texts: readonly string[]): Promise<string> {
  const created = await api("POST", "/v1/conversations", { token, body: { title } });
  expect(created.status).toBe(201);
  const id = created.body.id as string;
  for (const text of texts) {
    const posted = await api("POST", `/v1/conversations/${id}/messages`, { token, body: { text } });
    expect(posted.status).toBe(201);
  }
  return id;
}
