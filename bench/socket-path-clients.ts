// The clients of bench/socket-path.ts, in a worker thread: y-websocket sockets (bare y-protocols
// frames), each with its own Y.Doc, each writing a two-character insert to the room's text (an update of
// about 30 bytes) in rounds. Reports what was sent and received after each batch of rounds.

import { parentPort, workerData } from "node:worker_threads";
import WebSocket from "ws";
import * as Y from "yjs";
import { readBareMessage } from "./clients/y-sync.ts";
import { encodeBareUpdate, yWebsocketClient } from "./clients/y-websocket.ts";

const { port, token, conversations, clientsPerRoom } = workerData as {
  port: number;
  token: string;
  conversations: string[];
  clientsPerRoom: number;
};
const port_ = parentPort;
if (!port_) throw new Error("run as a worker");

interface Client {
  ws: WebSocket;
  text: Y.Text;
  frame: Uint8Array | null;
}

let sent = 0;
let received = 0;
let closed = 0;

function connect(conversation: string): Promise<Client> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/yjs/${conversation}?token=${token}`, { perMessageDeflate: false });
    const doc = new Y.Doc();
    const client: Client = { ws, text: doc.getText("notes"), frame: null };
    doc.on("update", (update: Uint8Array) => {
      client.frame = encodeBareUpdate(update);
    });
    let synced = false;
    const session = yWebsocketClient.session(conversation, {});
    ws.on("open", () => {
      for (const frame of session.opening()) ws.send(frame);
    });
    ws.on("message", (data: Buffer) => {
      const incoming = readBareMessage(data);
      if (incoming.kind === "update") {
        received++;
        const done = roundDone;
        roundDone = null;
        done?.();
      }
      else if (incoming.kind === "synced" && !synced) {
        synced = true;
        resolve(client);
      }
    });
    ws.on("close", (code) => {
      closed++;
      if (!synced) reject(new Error(`closed with ${code} before sync`));
    });
    ws.on("error", reject);
  });
}

const clients: Client[] = [];
for (const conversation of conversations) {
  const room = await Promise.all(Array.from({ length: clientsPerRoom }, () => connect(conversation)));
  clients.push(...room);
}

/**
 * Runs `count` rounds: in each, every client sends one update and the round ends once every other
 * client of its room received it. The work per update is then the same however busy the machine
 * is (an open-loop rate would batch more, and cost less per update, when the server is starved).
 */
async function rounds(count: number): Promise<void> {
  for (let r = 0; r < count; r++) {
    const target = received + clients.length * (clientsPerRoom - 1);
    for (const client of clients) {
      client.text.insert(client.text.length, "ab");
      if (client.frame) client.ws.send(client.frame);
      sent++;
    }
    while (received < target) {
      await new Promise<void>((resolve) => {
        roundDone = resolve;
      });
    }
  }
}
let roundDone: (() => void) | null = null;

port_.on("message", async (message: { rounds: number }) => {
  await rounds(message.rounds);
  port_.postMessage({ type: "counts", sent, received, closed });
});
port_.postMessage({ type: "ready", sent, received, closed });
