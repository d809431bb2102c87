// Local fan-out through uWS topics: one topic per conversation and wire dialect (Parley envelope
// or plain y-websocket). Each frame is encoded once per dialect and published once; uWS copies it
// to every subscriber. The sending connection is skipped by publishing from its own socket.

import type { DocMessage } from "../../protocol/index.ts";
import { encodeDocFrame, encodeDocMessage } from "../../protocol/index.ts";
import type { CommitOrigin, FanOut, LocalCommit } from "../writes/write-path.ts";
import type { SocketTraffic } from "../platform/metrics.ts";
import type { UWS } from "../platform/uws.ts";
import type { ChannelRegistry } from "./conversation-channel.ts";

/** The two wire dialects a conversation's subscribers may speak. */
export type Dialect = CommitOrigin["dialect"];

/** The topic a conversation's subscribers of one dialect listen on. */
export function topicOf(dialect: Dialect, conversation: string): string {
  return (dialect === "parley" ? "p/" : "y/") + conversation;
}

/** A connection that may originate a broadcast (so it can be left out of it). */
export type BroadcastOrigin = CommitOrigin;

/** Publishes document messages to a conversation's local subscribers. */
export class Broadcaster implements FanOut {
  /** Conversations published to since the last check of their members' send buffers. */
  private readonly unchecked = new Set<string>();
  private checkTimer: NodeJS.Timeout | null = null;

  /** `channels`: whose members are checked for a full send buffer after publishing (4508). */
  constructor(
    private readonly app: UWS.TemplatedApp,
    protected readonly channels?: ChannelRegistry,
    /** Counts frames sent, once per subscriber (metrics). */
    private readonly traffic?: SocketTraffic,
  ) {}

  committedUpdate(conversation: string, update: Uint8Array, _seq: number, local?: LocalCommit): void {
    this.publish(conversation, { type: "update", update }, local?.origin, local?.envelope, local?.bareFrame);
  }

  /**
   * Publishes a message to both dialects' subscribers, skipping `origin`. `envelope` and
   * `bareFrame`: the message already encoded as a Parley frame and as a bare y-protocols message.
   */
  publish(conversation: string, message: DocMessage, origin?: BroadcastOrigin, envelope?: Uint8Array, bareFrame?: Uint8Array): void {
    const parleyTopic = topicOf("parley", conversation);
    const parleySubscribers = this.app.numSubscribers(parleyTopic);
    if (parleySubscribers > 0) {
      this.traffic?.sent("parley", origin?.dialect === "parley" && origin.socket ? parleySubscribers - 1 : parleySubscribers);
      this.send(parleyTopic, envelope ?? encodeDocFrame(conversation, message), origin?.dialect === "parley" ? origin : undefined);
    }
    const yjsTopic = topicOf("yjs", conversation);
    const yjsSubscribers = this.app.numSubscribers(yjsTopic);
    if (yjsSubscribers > 0) {
      this.traffic?.sent("yjs", origin?.dialect === "yjs" && origin.socket ? yjsSubscribers - 1 : yjsSubscribers);
      this.send(yjsTopic, bareFrame ?? encodeDocMessage(message), origin?.dialect === "yjs" ? origin : undefined);
    }
    this.checkBuffersSoon(conversation);
  }

  /**
   * uWS hands topic messages to the sockets at the end of the loop iteration, not inside
   * publish(): their buffers are checked on a timer after that, once per burst of publishes.
   */
  private checkBuffersSoon(conversation: string): void {
    if (!this.channels) return;
    this.unchecked.add(conversation);
    if (this.checkTimer) return;
    this.checkTimer = setTimeout(() => {
      this.checkTimer = null;
      const conversations = [...this.unchecked];
      this.unchecked.clear();
      for (const c of conversations) this.channels?.closeSlowMembers(c);
    }, 0);
  }

  private send(topic: string, frame: Uint8Array, origin: BroadcastOrigin | undefined): void {
    // Publishing from the origin's socket excludes it; once it is closed, publish app-wide.
    if (origin?.socket) origin.socket.publish(topic, frame, true);
    else this.app.publish(topic, frame, true);
  }
}
