// A TCP proxy for multi-node tests: as a load balancer in front of several server nodes (each new
// connection goes to the next live backend, a dead one is skipped), or in front of Redis to make
// it unreachable for some nodes only (cut: drop every connection and refuse new ones).

import { createServer, type Server, type Socket, connect } from "node:net";

/** A listening proxy. */
export class TcpProxy {
  /** Ports behind the proxy, tried in turn. */
  backends: number[];
  private next = 0;
  private down = false;
  private readonly pairs = new Set<[Socket, Socket]>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    backends: number[],
  ) {
    this.backends = backends;
  }

  /** Listens on an ephemeral port of 127.0.0.1. */
  static async start(backends: number[]): Promise<TcpProxy> {
    let proxy: TcpProxy | null = null;
    const server = createServer((client) => proxy?.accept(client));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    if (!address || typeof address === "string") throw new Error("no address");
    proxy = new TcpProxy(server, address.port, backends);
    return proxy;
  }

  /** Drops every proxied connection (both ways, abruptly) and refuses new ones until {@link restore}. */
  cut(): void {
    this.down = true;
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  restore(): void {
    this.down = false;
  }

  /** Connections currently proxied. */
  get connections(): number {
    return this.pairs.size;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket, attempt = 0): void {
    if (this.down || this.backends.length === 0 || attempt >= this.backends.length) {
      client.destroy();
      return;
    }
    const port = this.backends[this.next++ % this.backends.length];
    const upstream = connect({ host: "127.0.0.1", port });
    const pair: [Socket, Socket] = [client, upstream];
    let connected = false;
    upstream.once("connect", () => {
      connected = true;
      this.pairs.add(pair);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    upstream.on("error", () => {
      // A backend that refuses (a killed node) is skipped: the next one gets this client.
      if (!connected) this.accept(client, attempt + 1);
    });
    const drop = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    upstream.on("close", () => connected && drop());
    client.on("close", drop);
    client.on("error", drop);
  }
}
