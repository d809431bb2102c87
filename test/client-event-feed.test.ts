// The SDK's event feed on its own, against a scripted transport: it subscribes from its last
// cursor after every (re)connect, drops what it already had, pauses the server past its
// high-water mark and resumes once drained, and ends with the server's error.

import { describe, expect, it } from "vitest";
import { EventFeedChannel } from "../client-sdk/event-feed.ts";
import { type ClientControlMessage, decodeClientFrame, ErrorCode, type ParleyEvent } from "../protocol/index.ts";

function event(cursor: number): ParleyEvent {
  return { id: `evt_${cursor}`, cursor, type: "conversation.closed", occurredAt: 0, conversation: "cnv_1", data: { actor: { id: "u", org: "o" } } };
}

function scripted() {
  const sent: ClientControlMessage[] = [];
  let released = false;
  const transport = {
    send(frame: Uint8Array) {
      const decoded = decodeClientFrame(frame);
      if (decoded.kind === "control") sent.push(decoded.message);
      return true;
    },
    released() {
      released = true;
    },
  };
  return { sent, transport, wasReleased: () => released };
}

describe("the SDK event feed", () => {
  it("resubscribes after a reconnect from the last cursor it received, and drops repeats", async () => {
    const { sent, transport } = scripted();
    const feed = new EventFeedChannel({ after: 10 }, transport);
    feed.connected();
    expect(sent[0]).toMatchObject({ type: "subscribe-events", subscription: feed.id, after: 10 });
    for (const cursor of [11, 12]) feed.receive({ type: "event", subscription: feed.id, event: event(cursor) });
    feed.disconnected();
    feed.connected();
    expect(sent[1]).toMatchObject({ type: "subscribe-events", after: 12 });
    // The server resends what was in flight when the socket dropped: ignored.
    for (const cursor of [12, 13]) feed.receive({ type: "event", subscription: feed.id, event: event(cursor) });
    const iterator = feed[Symbol.asyncIterator]();
    const got = [];
    for (let i = 0; i < 3; i++) got.push(((await iterator.next()).value as ParleyEvent).cursor);
    expect(got).toEqual([11, 12, 13]);
    expect(feed.cursor).toBe(13);
  });

  it("remembers where 'now' was, so a reconnect does not skip what happened meanwhile", () => {
    const { sent, transport } = scripted();
    const feed = new EventFeedChannel({}, transport);
    feed.connected();
    expect(sent[0]).not.toHaveProperty("after");
    feed.receive({ type: "events-subscribed", subscription: feed.id, cursor: 40 });
    feed.disconnected();
    feed.connected();
    expect(sent[1]).toMatchObject({ type: "subscribe-events", after: 40 });
  });

  it("pauses the server when the consumer falls behind and resumes when it catches up", async () => {
    const { sent, transport } = scripted();
    const feed = new EventFeedChannel({ after: 0, highWaterMark: 4 }, transport);
    feed.connected();
    for (let cursor = 1; cursor <= 4; cursor++) feed.receive({ type: "event", subscription: feed.id, event: event(cursor) });
    expect(sent.at(-1)).toEqual({ type: "unsubscribe-events", subscription: feed.id });
    const iterator = feed[Symbol.asyncIterator]();
    await iterator.next();
    await iterator.next();
    expect(sent.at(-1)).toMatchObject({ type: "subscribe-events", after: 4 });
  });

  it("ends with the server's error after the events it already delivered", async () => {
    const { transport, wasReleased } = scripted();
    const feed = new EventFeedChannel({ after: 0 }, transport);
    feed.connected();
    feed.receive({ type: "event", subscription: feed.id, event: event(1) });
    feed.receive({ type: "events-error", subscription: feed.id, code: ErrorCode.EventCursorExpired, message: "too old" });
    const iterator = feed[Symbol.asyncIterator]();
    expect((await iterator.next()).value).toMatchObject({ cursor: 1 });
    await expect(iterator.next()).rejects.toMatchObject({ code: ErrorCode.EventCursorExpired });
    expect(wasReleased()).toBe(true);
  });

  it("finishes a pending iteration when closed", async () => {
    const { sent, transport } = scripted();
    const feed = new EventFeedChannel({ after: 0 }, transport);
    feed.connected();
    const pending = feed[Symbol.asyncIterator]().next();
    feed.close();
    expect(await pending).toEqual({ value: undefined, done: true });
    expect(sent.at(-1)).toEqual({ type: "unsubscribe-events", subscription: feed.id });
  });
});
