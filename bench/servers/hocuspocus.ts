// A minimal Hocuspocus server for comparison: default settings, no extensions (so no persistence),
// no authentication hook. Logs a "listening" JSON line when ready.

import { Server } from "@hocuspocus/server";

const server = new Server({
  address: process.env.HOST ?? "127.0.0.1",
  port: Number(process.env.PORT ?? 0),
  quiet: true,
});

await server.listen();
console.log(JSON.stringify({ msg: "listening", port: server.address.port }));
