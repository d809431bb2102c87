// The worker-thread RPC every SQLite service (log store, directory, audit log, partner storage)
// runs behind: whatever goes wrong in a call (a handler that throws, a message that cannot cross
// to the worker or back, a worker that dies) fails that call with a clear error, and nothing waits
// forever; buffers can be moved both ways; close lets calls in flight finish.

import { afterEach, expect, it } from "vitest";
import { type CallFailure, WorkerCallError, WorkerService, type WorkerServiceOptions } from "../server/sql/worker-service.ts";

interface Fixture {
  operations: readonly string[];
  echo(value: unknown): { name: string; value: unknown };
  fail(message: string): never;
  unsendable(): () => void;
  die(): never;
  reversed(buffer: ArrayBuffer): ArrayBuffer;
  lastReversedDetached(): boolean;
  close(): void;
}

const FIXTURE = new URL("./fixtures/worker-fixture-service.ts", import.meta.url);
const started: WorkerService<Fixture>[] = [];
afterEach(async () => {
  for (const service of started.splice(0)) await service.close();
});

async function start(options: WorkerServiceOptions = {}): Promise<WorkerService<Fixture>> {
  const service = await WorkerService.start<Fixture>(FIXTURE, { name: "fixture" }, options);
  started.push(service);
  return service;
}

it("a handler that throws fails that call with its message and code, and the next call works", async () => {
  const service = await start();
  const failed = await service.api.fail("disk says no").catch((error: unknown) => error);
  expect(failed).toBeInstanceOf(WorkerCallError);
  expect((failed as WorkerCallError).message).toBe("disk says no");
  expect((failed as WorkerCallError).code).toBe("busy");
  expect(await service.api.echo(1)).toEqual({ name: "fixture", value: 1 });
});

it("arguments that cannot be sent to the worker fail that call at once, leaving nothing pending", async () => {
  const service = await start();
  const failed = await service.api.echo(() => 1).catch((error: unknown) => error);
  expect(failed).toBeInstanceOf(WorkerCallError);
  expect((failed as WorkerCallError).code).toBe("invalid_request");
  expect((failed as WorkerCallError).message).toContain("cannot send echo to the service worker");
  // Nothing left waiting for a reply that never comes (a pending call also keeps the process alive).
  expect(service.pendingCalls).toBe(0);
  expect(await service.api.echo("after")).toEqual({ name: "fixture", value: "after" });
});

it("a result that cannot be sent back fails that call, and the next call works", async () => {
  const service = await start();
  const failed = await service.api.unsendable().catch((error: unknown) => error);
  expect(failed).toBeInstanceOf(WorkerCallError);
  expect((failed as WorkerCallError).message).toContain("unserializable result");
  expect(await service.api.echo(2)).toEqual({ name: "fixture", value: 2 });
});

it("a worker that dies fails every pending and later call as unavailable, and reports itself dead", async () => {
  const service = await start();
  const inFlight = [service.api.die(), service.api.echo("queued behind the death")].map((call) => call.catch((error: unknown) => error));
  for (const failed of await Promise.all(inFlight)) {
    expect(failed).toBeInstanceOf(WorkerCallError);
    expect((failed as WorkerCallError).code).toBe("unavailable");
    expect((failed as WorkerCallError).message).toContain("service worker exited (code 7)");
  }
  expect(service.alive).toBe(false);
  const later = await service.api.echo(3).catch((error: unknown) => error);
  expect((later as WorkerCallError).code).toBe("unavailable");
  expect(service.pendingCalls).toBe(0);
});

it("moves an ArrayBuffer to the worker and the one it answers back, instead of copying either", async () => {
  const service = await start();
  const sent = new Uint8Array([1, 2, 3, 4]).buffer;
  const answered = await service.call("reversed", [sent], [sent]);
  expect(sent.byteLength).toBe(0); // moved out of this thread
  expect(Array.from(new Uint8Array(answered))).toEqual([4, 3, 2, 1]);
  expect(await service.call("lastReversedDetached", [])).toBe(true); // moved out of the worker
  // Without a transfer list the argument is copied and stays usable here.
  const copied = new Uint8Array([5, 6]).buffer;
  expect(Array.from(new Uint8Array(await service.api.reversed(copied)))).toEqual([6, 5]);
  expect(copied.byteLength).toBe(2);
});

it("rejects with the service's own error type, for its handlers' failures and the RPC's alike", async () => {
  class ServiceError extends Error {
    constructor(readonly failure: CallFailure) {
      super(failure.message);
    }
  }
  const service = await start({ name: "fixture worker", toError: (failure) => new ServiceError(failure) });
  const thrown = await service.api.fail("locked").catch((error: unknown) => error);
  expect(thrown).toBeInstanceOf(ServiceError);
  expect((thrown as ServiceError).failure).toEqual({ code: "busy", message: "locked", name: "Error" });
  const unsendable = await service.api.echo(() => 1).catch((error: unknown) => error);
  expect((unsendable as ServiceError).failure).toMatchObject({ code: "invalid_request", message: expect.stringContaining("cannot send echo to the fixture worker") });
  await service.close();
  const closed = await service.api.echo(1).catch((error: unknown) => error);
  expect((closed as ServiceError).failure).toMatchObject({ code: "closed", message: "the fixture worker is closed" });
});

it("lets a call in flight finish when closing, then fails later calls as closed (not unavailable)", async () => {
  const service = await start();
  const inFlight = service.api.echo("before close");
  const closed = service.close();
  expect(service.alive).toBe(false);
  await expect(inFlight).resolves.toEqual({ name: "fixture", value: "before close" });
  await closed;
  expect(service.deathCause).toBeNull();
  await expect(service.api.echo("after")).rejects.toMatchObject({ name: "WorkerCallError", code: "closed" });
  expect(service.pendingCalls).toBe(0);
});

it("a service that fails to open rejects start as unavailable, saying why", async () => {
  const failed = await WorkerService.start<Fixture>(FIXTURE, { name: "fixture", failOpen: true }).catch((error: unknown) => error);
  expect(failed).toBeInstanceOf(WorkerCallError);
  expect(failed).toMatchObject({ code: "unavailable", message: "the fixture cannot open its file" });
});

it("a worker killed from outside fails later calls as unavailable, naming its exit", async () => {
  const service = await start();
  await service.killForTesting();
  await expect(service.api.echo(1)).rejects.toMatchObject({ code: "unavailable", message: expect.stringContaining("service worker exited (code 1)") });
  expect(service.alive).toBe(false);
  // Liveness reads this: a death, with its cause.
  expect(service.deathCause).toContain("service worker exited (code 1)");
});
