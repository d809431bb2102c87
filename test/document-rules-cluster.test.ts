// Client-id ownership with several nodes (real server processes sharing Postgres and Redis): two
// organisations on two nodes race to be first to use one fresh Yjs client id. Each node's own
// index sees the id as new; the store, which records owners in the append's transaction after
// locking the conversation's head, lets exactly one of them win, and the other is refused (4004)
// with nothing stored. The loser is then refused by its node's index too.

import { afterEach, describe, expect, it } from "vitest";
import * as Y from "yjs";
import { ErrorCode, notesOf } from "../protocol/index.ts";
import { startCluster } from "./helpers/cluster.ts";
import { apiClient } from "./helpers/http-client.ts";
import { requireClusterServices } from "./helpers/services.ts";
import { signUp } from "./helpers/sign-up.ts";
import { UpdateWriter, updateOf } from "./helpers/update-writer.ts";

const services = await requireClusterServices();

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

describe.skipIf(!services)("client ids across nodes", { timeout: 120_000 }, () => {
  it("lets exactly one of two nodes' writers win a race for a fresh client id", async () => {
    if (!services) return;
    const cluster = await startCluster(services, { count: 2 });
    cleanups.push(() => cluster.cleanup());
    const [a, b] = cluster.nodes.map((node) => apiClient(node.httpUrl));
    const ann = await signUp(a, "ann@race.example", "Helpdesk");
    const sam = await signUp(b, "sam@race.example", "Supplier");
    const created = await a("POST", "/v1/conversations", { token: ann.token, body: { title: "Race", participants: [{ organisation: sam.orgId }] } });
    const conversation = created.body.id as string;
    const annWriter = await UpdateWriter.join(cluster.nodes[0].url, ann.token, conversation);
    const samWriter = await UpdateWriter.join(cluster.nodes[1].url, sam.token, conversation);
    cleanups.push(() => annWriter.close());
    cleanups.push(() => samWriter.close());

    for (let round = 0; round < 5; round++) {
      const client = 5_000_000 + round;
      const first = (text: string) => {
        const doc = new Y.Doc();
        doc.clientID = client;
        return updateOf(doc, () => notesOf(doc).insert(0, text));
      };
      const answers = await Promise.all([annWriter.send(first(`ann ${round}`)), samWriter.send(first(`sam ${round}`))]);
      const winners = answers.filter((answer) => answer.ok);
      expect(winners, JSON.stringify(answers)).toHaveLength(1);
      expect(answers.find((answer) => !answer.ok)).toMatchObject({ code: ErrorCode.ClientIdTaken });
      // The loser cannot continue under the id either.
      const loser = answers[0].ok ? samWriter : annWriter;
      const next = new Y.Doc();
      next.clientID = client;
      notesOf(next).insert(0, "x");
      const again = await loser.send(Y.encodeStateAsUpdate(next));
      expect(again).toMatchObject({ ok: false, code: ErrorCode.ClientIdTaken });
    }
    // Exactly the winners' texts were stored, one per round.
    const store = await cluster.store();
    const entries = (await store.readEntries(conversation, 0, 100)).filter((entry) => entry.kind === "update");
    expect(entries).toHaveLength(5);
  });
});
