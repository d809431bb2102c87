// SIGKILL in the middle of HTTP writes (message posts and conversation deletions) on a real
// `parley serve`: after a restart, every post answered 201 is in the conversation and every
// deletion answered 200 holds. (Socket updates: test/durability.test.ts; backups and restores
// under writes: test/backup-restore.test.ts.)

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startChildServer } from "./helpers/child-server.ts";
import { apiClient } from "./helpers/http-client.ts";
import { signUp } from "./helpers/sign-up.ts";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

describe("SIGKILL during HTTP writes", { timeout: 180_000 }, () => {
  it("keeps every acknowledged post and deletion", async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), "parley-kill-http-"));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const env = {};
    const first = await startChildServer(dataDir, env);
    cleanups.push(async () => first.process.kill("SIGKILL"));
    let api = apiClient(`http://127.0.0.1:${first.port}`);
    const owner = await signUp(api, "kai@helpdesk.example", "Helpdesk BV");
    const conversation = (await api("POST", "/v1/conversations", { token: owner.token, body: { title: "Posts" } })).body.id as string;
    const doomed: string[] = [];
    for (let i = 0; i < 6; i++) doomed.push((await api("POST", "/v1/conversations", { token: owner.token, body: { title: `Doomed ${i}` } })).body.id as string);

    // Posts and deletions in flight together; the server is killed once some posts are answered.
    const acked: string[] = [];
    const deleted: string[] = [];
    let answered = 0;
    let killed!: () => void;
    const killNow = new Promise<void>((resolve) => (killed = resolve));
    const post = async (i: number) => {
      const response = await api("POST", `/v1/conversations/${conversation}/messages`, { token: owner.token, body: { text: `post ${i}` } }).catch(() => null);
      if (response?.status === 201) acked.push(`post ${i}`);
      if (++answered >= 10 && (deleted.length > 0 || answered >= 150)) killed();
    };
    const remove = async (id: string) => {
      const response = await api("DELETE", `/v1/conversations/${id}`, { token: owner.token }).catch(() => null);
      if (response?.status === 200) deleted.push(id);
      if (answered >= 10 && deleted.length > 0) killed();
    };
    // Deletions first: they take longer than a post, and some should be answered before the kill.
    const inFlight = Promise.all([...doomed.map(remove), ...Array.from({ length: 200 }, (_, i) => post(i))]);
    await killNow;
    first.process.kill("SIGKILL");
    await first.exited;
    await inFlight;
    console.log(`acknowledged before SIGKILL: ${acked.length} posts, ${deleted.length} deletions`);
    expect(acked.length).toBeGreaterThan(0);

    const second = await startChildServer(dataDir, env);
    cleanups.push(async () => second.process.kill("SIGKILL"));
    api = apiClient(`http://127.0.0.1:${second.port}`);
    const login = await api("POST", "/v1/auth/login", { body: { email: "kai@helpdesk.example", password: "violet-harbour-tractor-91!" } });
    const token = login.body.accessToken as string;
    const messages = await api("GET", `/v1/conversations/${conversation}/messages`, { token });
    expect(messages.status).toBe(200);
    const texts = (messages.body.items as { text: string }[]).map((m) => m.text);
    for (const text of acked) expect(texts).toContain(text);
    for (const id of deleted) expect((await api("GET", `/v1/conversations/${id}`, { token })).status).toBe(404);
  });
});
