// The worker-thread RPC every SQLite service (directory, audit log, partner storage) runs behind:
// whatever goes wrong in a call (a handler that throws, a message that cannot cross to the worker
// or back, a worker that dies) fails that call with a clear error, and nothing waits forever.

import { afterEach, expect, it } from "vitest";
import { WorkerCallError, WorkerService } from "../server/sql/worker-service.ts";

interface Fixture {
  operations: readonly string[];
  echo(value: unknown): { name: string; value: unknown };
  fail(message: string): never;
  unsendable(): () => void;
  die(): never;
  close(): void;
}

const FIXTURE = new URL("./fixtures/worker-fixture-service.ts", import.meta.url);
const started: WorkerService<Fixture>[] = [];
afterEach(async () => {
  for (const service of started.splice(0)) await service.close();
});

async function start(): Promise<WorkerService<Fixture>> {
  const service = await WorkerService.start<Fixture>(FIXTURE, { name: "fixture" });
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
    expect((failed as WorkerCallError).message).toContain("service worker exited (7)");
  }
  expect(service.alive).toBe(false);
  const later = await service.api.echo(3).catch((error: unknown) => error);
  expect((later as WorkerCallError).code).toBe("unavailable");
  expect(service.pendingCalls).toBe(0);
});
