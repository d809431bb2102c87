// Every server under test starts as its own process on 127.0.0.1, lets a client of its protocol
// sync and receive another client's update, and stops cleanly, leaving no process behind.

import { afterAll, describe, expect, it } from "vitest";
import { clients, SERVER_NAMES } from "../clients/index.ts";
import { BenchClient } from "../load/bench-client.ts";
import { UpdateCatalog } from "../load/catalog.ts";
import { buildWriterUpdates } from "../load/writers.ts";
import { processExists } from "../measure/proc.ts";
import { clientAuth, startServer, unavailable } from "../servers/registry.ts";
import { killAllNow } from "../suite/children.ts";

afterAll(() => killAllNow());

describe.each(SERVER_NAMES)("%s", (name) => {
  it.skipIf(unavailable(name) !== undefined)("starts, relays an update between two clients, and stops cleanly", async () => {
    const [server, auth] = await Promise.all([startServer(name), clientAuth(name, ["room-0"])]);
    const pid = server.pid;
    try {
      expect(processExists(pid)).toBe(true);
      const protocol = clients[name];
      const writer = new BenchClient(protocol, server.port, "room-0", auth, 15_000);
      const reader = new BenchClient(protocol, server.port, "room-0", auth, 15_000);
      await Promise.all([writer.synced, reader.synced]);

      const source = buildWriterUpdates(1, 3);
      const catalog = new UpdateCatalog(source);
      const received: number[] = [];
      reader.events = {
        ...reader.events,
        update: (update) => {
          catalog.identify(update, (_writer, index) => received.push(index));
        },
      };
      for (const update of source.updates) writer.send(protocol.encodeUpdate("room-0", update));
      const deadline = Date.now() + 10_000;
      while (received.length < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(received).toEqual([0, 1, 2]);
      await Promise.all([writer.close(), reader.close()]);
    } finally {
      await server.stop();
    }
    expect(processExists(pid)).toBe(false);
  });
});
