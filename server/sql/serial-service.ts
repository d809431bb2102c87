// The worker-thread side shared by every SQLite worker (directory, audit log, partner storage):
// expose named operations of one or more objects, run strictly one after another, so a
// transaction of one operation never interleaves with another's across an await.

/** One object's operations, exposed as `<prefix>.<op>` (or `<op>` when prefix is ""). */
export interface ExposedTarget {
  prefix: string;
  target: object;
  operations: readonly string[];
}

/** A service object for WorkerService: every operation queued behind the one before, and close last. */
export function serialService(targets: readonly ExposedTarget[], close: () => void): Record<string, unknown> & { operations: string[]; close: () => Promise<void> } {
  let tail: Promise<unknown> = Promise.resolve();
  const serially = <T>(work: () => Promise<T> | T): Promise<T> => {
    const result = tail.then(work);
    tail = result.catch(() => undefined);
    return result;
  };
  const service: Record<string, unknown> = {};
  const operations: string[] = ["close"];
  for (const { prefix, target, operations: names } of targets) {
    const methods = target as Record<string, (...args: unknown[]) => unknown>;
    for (const op of names) {
      const name = prefix ? `${prefix}.${op}` : op;
      service[name] = (...args: unknown[]) => serially(() => methods[op].apply(target, args));
      operations.push(name);
    }
  }
  return Object.assign(service, { operations, close: () => serially(close) });
}
