// Small byte strings of a commit (digests, sealed records) cut from shared blocks: one
// allocation per block instead of one per value. A typed array of its own costs V8 a tracked
// backing store each, freed only by a GC; under a steady commit load that was a tenth of the store
// worker's time. A value keeps its whole block alive, so blocks are small and values short-lived
// (rows bound to an insert, then dropped). Code that reads a value must use its view bounds
// (byteOffset, byteLength), never `.buffer` alone: the block holds other values too.

const BLOCK_BYTES = 64 * 1024;
/** Larger values get a buffer of their own: they would waste most of a block. */
const LARGEST_SHARED = 4 * 1024;

export class ByteArena {
  private block = Buffer.alloc(0);
  private used = 0;

  /** `length` zero bytes of a block (zero-filled once per block, a memset per few hundred values). */
  take(length: number): Buffer {
    if (length > LARGEST_SHARED) return Buffer.alloc(length);
    if (this.used + length > this.block.length) {
      this.block = Buffer.alloc(BLOCK_BYTES);
      this.used = 0;
    }
    const view = this.block.subarray(this.used, this.used + length);
    this.used += length;
    return view;
  }

  /** The bytes a hex string of exactly `length` bytes spells. */
  fromHex(hexText: string, length: number): Buffer {
    const view = this.take(length);
    if (view.write(hexText, 0, length, "hex") !== length) throw new Error(`expected ${length} bytes of hex`);
    return view;
  }
}
