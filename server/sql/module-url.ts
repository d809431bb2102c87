// Worker threads load their code by URL, and no compiler rewrites a URL: this names a module
// beside the caller with the caller's own extension (.ts when running from source under tsx or
// vitest, .js once compiled into dist/), so one spawning code path serves both.

/** The URL of `relative` (written without extension) next to `callerUrl`, with its extension. */
export function moduleBeside(callerUrl: string, relative: string): URL {
  const extension = new URL(callerUrl).pathname.endsWith(".ts") ? ".ts" : ".js";
  return new URL(`${relative}${extension}`, callerUrl);
}
