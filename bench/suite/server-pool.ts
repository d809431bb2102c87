// Which server process a case runs against. Fresh mode (--full) starts a new server for every
// case; shared mode (the quick suite) keeps one process per server for all its scenarios (each
// scenario in rooms of its own) and replaces it after any case that did not end cleanly.

import type { ServerName } from "../clients/index.ts";
import { type ServerUnderTest, startServer } from "../servers/registry.ts";

export class ServerPool {
  private readonly running = new Map<ServerName, ServerUnderTest>();

  constructor(
    readonly shared: boolean,
    private readonly niceness = 0,
  ) {}

  async acquire(name: ServerName): Promise<ServerUnderTest> {
    const kept = this.running.get(name);
    if (kept) return kept;
    const server = await startServer(name, this.niceness);
    if (this.shared) this.running.set(name, server);
    return server;
  }

  /** Hands a server back; `clean` is false when the case failed, lost updates or saw closes. */
  async release(server: ServerUnderTest, clean: boolean): Promise<void> {
    if (this.shared && clean && this.running.get(server.name) === server) return;
    this.running.delete(server.name);
    await server.stop();
  }

  /** Stops every kept server (call when moving on to another server, and at the end). */
  async stopAll(): Promise<void> {
    const servers = [...this.running.values()];
    this.running.clear();
    await Promise.all(servers.map((server) => server.stop()));
  }
}
