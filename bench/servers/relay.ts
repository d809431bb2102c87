// The ceiling: a bare uWebSockets.js server that subscribes each socket to the room named by its
// URL path and publishes every binary message it receives, unchanged, to the other sockets of
// that room. No protocol, no state, no persistence. Logs a "listening" JSON line when ready.

import uWS from "uWebSockets.js";

interface Room {
  topic: string;
}

const host = process.env.HOST ?? "127.0.0.1";
const port = Number(process.env.PORT ?? 0);

uWS
  .App()
  .ws<Room>("/*", {
    // Large enough for the biggest benchmark frame; a relay should never be the one dropping.
    maxPayloadLength: 64 * 1024 * 1024,
    maxBackpressure: 64 * 1024 * 1024,
    idleTimeout: 0,
    upgrade: (res, req, context) => {
      res.upgrade<Room>(
        { topic: req.getUrl() },
        req.getHeader("sec-websocket-key"),
        req.getHeader("sec-websocket-protocol"),
        req.getHeader("sec-websocket-extensions"),
        context,
      );
    },
    open: (ws) => {
      ws.subscribe(ws.getUserData().topic);
    },
    message: (ws, message, isBinary) => {
      ws.publish(ws.getUserData().topic, message, isBinary);
    },
  })
  .listen(host, port, (listenSocket) => {
    if (!listenSocket) {
      console.error(JSON.stringify({ msg: "listen failed", port }));
      process.exit(1);
    }
    console.log(JSON.stringify({ msg: "listening", port: uWS.us_socket_local_port(listenSocket) }));
  });
