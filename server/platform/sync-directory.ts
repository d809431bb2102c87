// Durable renames: a rename (or a file created or removed) is only certain to survive a power loss
// once the directory holding it is synced too, not just the file.

import { open } from "node:fs/promises";

/** Syncs the directory `dir`, making the renames, creations and removals in it durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
