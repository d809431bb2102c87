// The y-websocket reference server for comparison: @y/websocket-server's setupWSConnection on a
// plain `ws` server, one document per URL path, no persistence (YPERSISTENCE unset), the same
// wiring as its bin/server.js. Logs a "listening" JSON line when ready.

import http from "node:http";
import type { AddressInfo } from "node:net";
import { setupWSConnection } from "@y/websocket-server/utils";
import { WebSocketServer } from "ws";

const wss = new WebSocketServer({ noServer: true });
wss.on("connection", setupWSConnection);

const server = http.createServer((_request, response) => {
  response.writeHead(200, { "Content-Type": "text/plain" });
  response.end("okay");
});
server.on("upgrade", (request, socket, head) => {
  wss.handleUpgrade(request, socket, head, (ws) => wss.emit("connection", ws, request));
});

server.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? "127.0.0.1", () => {
  console.log(JSON.stringify({ msg: "listening", port: (server.address() as AddressInfo).port }));
});
