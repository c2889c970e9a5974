/**
 * The part of Cap'n Proto's encoding the sandbox edge needs to talk to cloudflared's registration RPC: the stream
 * framing, and reading and building structs, lists, text, data and capability pointers. Written from the encoding's
 * specification (capnproto.org/encoding.html); no schema compiler, no generated code: tunnel-rpc.ts names the few
 * fields by their positions.
 *
 * - A message is a segment table (u32 LE segment count - 1, then a u32 LE word count per segment, padded to 8 bytes)
 *   followed by the segments. cloudflared sends one segment; any number is read.
 * - A pointer is one little-endian 64-bit word; its two low bits say what it is: 0 struct, 1 list, 2 far (the
 *   target is in another segment, through a landing pad), 3 capability (an index into the message's cap table).
 * - A field outside a struct's data section reads as zero, and a null pointer as "not set": readers of an older or
 *   newer schema still agree.
 */

const WORD = 8;

export class CapnpError extends Error {}

/** One decoded message: its segments and where the frame ended in the buffer it came from. */
export interface FramedMessage {
  segments: Buffer[];
  /** Bytes the frame took (header and segments). */
  length: number;
}

/** The largest message we accept, as cloudflared's reader (64 MiB). */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/**
 * Reads one framed message from the start of `buffer`; null when the buffer does not hold a whole one yet (a stream
 * delivers frames in pieces).
 */
export function readFrame(buffer: Buffer): FramedMessage | null {
  if (buffer.length < 4) return null;
  const count = buffer.readUInt32LE(0) + 1;
  if (count > 512) throw new CapnpError(`a message with ${count} segments is not one cloudflared sends`);
  const headerBytes = Math.ceil((4 + 4 * count) / WORD) * WORD;
  if (buffer.length < headerBytes) return null;
  const sizes: number[] = [];
  for (let index = 0; index < count; index += 1) sizes.push(buffer.readUInt32LE(4 + 4 * index) * WORD);
  const total = headerBytes + sizes.reduce((sum, size) => sum + size, 0);
  if (total > MAX_MESSAGE_BYTES) throw new CapnpError(`a message of ${total} bytes is over the ${MAX_MESSAGE_BYTES}-byte limit`);
  if (buffer.length < total) return null;
  const segments: Buffer[] = [];
  let offset = headerBytes;
  for (const size of sizes) {
    segments.push(buffer.subarray(offset, offset + size));
    offset += size;
  }
  return { segments, length: total };
}

/** Frames one segment as a message. */
export function frame(segment: Buffer): Buffer {
  const header = Buffer.alloc(WORD);
  header.writeUInt32LE(0, 0);
  header.writeUInt32LE(segment.length / WORD, 4);
  return Buffer.concat([header, segment]);
}

// ---------------------------------------------------------------------------------------------------------------
// Reading

interface Location {
  segment: number;
  /** Word index within the segment. */
  word: number;
}

type Resolved =
  | { kind: 'null' }
  | { kind: 'struct'; at: Location; dataWords: number; pointerCount: number }
  | { kind: 'list'; at: Location; elementSize: number; count: number }
  | { kind: 'capability'; index: number };

/** A struct in a received message, read by field position. */
export class StructReader {
  constructor(
    private readonly segments: readonly Buffer[],
    private readonly at: Location,
    readonly dataWords: number,
    readonly pointerCount: number,
  ) {}

  private dataByte(offset: number, size: number): number | null {
    if (offset + size > this.dataWords * WORD) return null;
    return this.at.word * WORD + offset;
  }

  private get segment(): Buffer {
    return segmentOf(this.segments, this.at.segment);
  }

  u8(offset: number): number {
    const at = this.dataByte(offset, 1);
    return at === null ? 0 : this.segment.readUInt8(at);
  }

  u16(offset: number): number {
    const at = this.dataByte(offset, 2);
    return at === null ? 0 : this.segment.readUInt16LE(at);
  }

  u32(offset: number): number {
    const at = this.dataByte(offset, 4);
    return at === null ? 0 : this.segment.readUInt32LE(at);
  }

  u64(offset: number): bigint {
    const at = this.dataByte(offset, 8);
    return at === null ? 0n : this.segment.readBigUInt64LE(at);
  }

  /** Bit `bit` of the data section (bit 0 is the lowest bit of byte 0). */
  bool(bit: number): boolean {
    return (this.u8(bit >> 3) & (1 << (bit & 7))) !== 0;
  }

  private pointer(index: number): Resolved {
    if (index >= this.pointerCount) return { kind: 'null' };
    return resolvePointer(this.segments, { segment: this.at.segment, word: this.at.word + this.dataWords + index });
  }

  struct(index: number): StructReader | null {
    const target = this.pointer(index);
    if (target.kind === 'null') return null;
    if (target.kind !== 'struct') throw new CapnpError(`pointer ${index} is a ${target.kind}, a struct was expected`);
    return new StructReader(this.segments, target.at, target.dataWords, target.pointerCount);
  }

  /** The capability index a pointer holds (an index into the payload's cap table), null when not set. */
  capability(index: number): number | null {
    const target = this.pointer(index);
    if (target.kind === 'null') return null;
    if (target.kind !== 'capability') throw new CapnpError(`pointer ${index} is a ${target.kind}, a capability was expected`);
    return target.index;
  }

  data(index: number): Buffer | null {
    const target = this.pointer(index);
    if (target.kind === 'null') return null;
    if (target.kind !== 'list' || target.elementSize !== 2) throw new CapnpError(`pointer ${index} is not a byte list`);
    const start = target.at.word * WORD;
    return Buffer.from(this.segmentAt(target.at).subarray(start, start + target.count));
  }

  text(index: number): string | null {
    const bytes = this.data(index);
    if (bytes === null) return null;
    // Text carries its NUL terminator in the list.
    return bytes.subarray(0, bytes.length > 0 && bytes[bytes.length - 1] === 0 ? bytes.length - 1 : bytes.length).toString('utf8');
  }

  /** A List(Text). */
  textList(index: number): string[] {
    const target = this.pointer(index);
    if (target.kind === 'null') return [];
    if (target.kind !== 'list' || target.elementSize !== 6) throw new CapnpError(`pointer ${index} is not a list of pointers`);
    const texts: string[] = [];
    for (let element = 0; element < target.count; element += 1) {
      const holder = new StructReader(this.segments, { segment: target.at.segment, word: target.at.word + element }, 0, 1);
      texts.push(holder.text(0) ?? '');
    }
    return texts;
  }

  private segmentAt(location: Location): Buffer {
    return segmentOf(this.segments, location.segment);
  }
}

/** A segment of the message; a pointer naming one the message does not have is malformed. */
function segmentOf(segments: readonly Buffer[], index: number): Buffer {
  const segment = segments[index];
  if (segment === undefined) throw new CapnpError('a pointer names a missing segment');
  return segment;
}

function signedOffset(low: number): number {
  // Bits 2..31 of the first half, as a signed 30-bit number.
  return low >> 2;
}

function resolvePointer(segments: readonly Buffer[], at: Location, depth = 0): Resolved {
  const segment = segments[at.segment];
  if (segment === undefined || (at.word + 1) * WORD > segment.length) throw new CapnpError('a pointer lies outside its segment');
  const low = segment.readInt32LE(at.word * WORD);
  const high = segment.readUInt32LE(at.word * WORD + 4);
  if (low === 0 && high === 0) return { kind: 'null' };
  switch (low & 3) {
    case 0:
      return { kind: 'struct', at: { segment: at.segment, word: at.word + 1 + signedOffset(low) }, dataWords: high & 0xffff, pointerCount: high >>> 16 };
    case 1:
      return listAt(segments, { segment: at.segment, word: at.word + 1 + signedOffset(low) }, high);
    case 2: {
      if (depth > 0) throw new CapnpError('a far pointer leads to another far pointer');
      const padSegment = high;
      const padWord = (low >>> 3) & 0x1fffffff;
      const doubleFar = (low & 4) !== 0;
      if (!doubleFar) return resolvePointer(segments, { segment: padSegment, word: padWord }, depth + 1);
      // Double-far: the pad's first word is a far pointer to the content, its second word a tag describing it.
      const pad = segments[padSegment];
      if (pad === undefined) throw new CapnpError('a far pointer names a missing segment');
      const contentLow = pad.readInt32LE(padWord * WORD);
      const content: Location = { segment: pad.readUInt32LE(padWord * WORD + 4), word: (contentLow >>> 3) & 0x1fffffff };
      const tagLow = pad.readInt32LE((padWord + 1) * WORD);
      const tagHigh = pad.readUInt32LE((padWord + 1) * WORD + 4);
      if ((tagLow & 3) === 0) return { kind: 'struct', at: content, dataWords: tagHigh & 0xffff, pointerCount: tagHigh >>> 16 };
      return listAt(segments, content, tagHigh);
    }
    default:
      return { kind: 'capability', index: high };
  }
}

function listAt(segments: readonly Buffer[], at: Location, high: number): Resolved {
  const elementSize = high & 7;
  const count = high >>> 3;
  if (elementSize !== 7) return { kind: 'list', at, elementSize, count };
  // Composite: a tag word (element count, struct sizes) precedes the elements; this reader does not need them.
  const segment = segmentOf(segments, at.segment);
  const elements = segment.readInt32LE(at.word * WORD) >> 2;
  return { kind: 'list', at: { segment: at.segment, word: at.word + 1 }, elementSize, count: elements };
}

/** The root struct of a message. */
export function rootOf(segments: readonly Buffer[]): StructReader {
  const root = resolvePointer(segments, { segment: 0, word: 0 });
  if (root.kind !== 'struct') throw new CapnpError(`the root pointer is a ${root.kind}, a struct was expected`);
  return new StructReader(segments, root.at, root.dataWords, root.pointerCount);
}

// ---------------------------------------------------------------------------------------------------------------
// Building (one segment that grows as needed)

class Arena {
  private buffer = Buffer.alloc(32 * WORD);
  /** Words used. */
  used = 0;

  allocate(words: number): number {
    const at = this.used;
    this.used += words;
    if (this.used * WORD > this.buffer.length) {
      const grown = Buffer.alloc(Math.max(this.buffer.length * 2, this.used * WORD));
      this.buffer.copy(grown);
      this.buffer = grown;
    }
    return at;
  }

  get bytes(): Buffer {
    return this.buffer;
  }

  segment(): Buffer {
    return Buffer.from(this.buffer.subarray(0, this.used * WORD));
  }
}

function writeWord(arena: Arena, word: number, low: number, high: number): void {
  arena.bytes.writeInt32LE(low | 0, word * WORD);
  arena.bytes.writeUInt32LE(high >>> 0, word * WORD + 4);
}

function structPointer(arena: Arena, pointerWord: number, targetWord: number, dataWords: number, pointerCount: number): void {
  writeWord(arena, pointerWord, (targetWord - pointerWord - 1) << 2, dataWords | (pointerCount << 16));
}

function listPointer(arena: Arena, pointerWord: number, targetWord: number, elementSize: number, count: number): void {
  writeWord(arena, pointerWord, ((targetWord - pointerWord - 1) << 2) | 1, elementSize | (count << 3));
}

/** A struct being written, by field position. */
export class StructBuilder {
  constructor(
    private readonly arena: Arena,
    private readonly word: number,
    private readonly dataWords: number,
    private readonly pointerCount: number,
  ) {}

  private byteAt(offset: number, size: number): number {
    if (offset + size > this.dataWords * WORD) throw new CapnpError(`byte ${offset} lies outside a data section of ${this.dataWords} words`);
    return this.word * WORD + offset;
  }

  private pointerWord(index: number): number {
    if (index >= this.pointerCount) throw new CapnpError(`pointer ${index} lies outside a struct of ${this.pointerCount} pointers`);
    return this.word + this.dataWords + index;
  }

  setU16(offset: number, value: number): this {
    this.arena.bytes.writeUInt16LE(value, this.byteAt(offset, 2));
    return this;
  }

  setU32(offset: number, value: number): this {
    this.arena.bytes.writeUInt32LE(value >>> 0, this.byteAt(offset, 4));
    return this;
  }

  setBool(bit: number, value: boolean): this {
    const at = this.byteAt(bit >> 3, 1);
    const mask = 1 << (bit & 7);
    const bytes = this.arena.bytes;
    const old = bytes.readUInt8(at);
    bytes.writeUInt8(value ? old | mask : old & ~mask & 0xff, at);
    return this;
  }

  initStruct(index: number, dataWords: number, pointerCount: number): StructBuilder {
    const pointer = this.pointerWord(index);
    const target = this.arena.allocate(dataWords + pointerCount);
    structPointer(this.arena, pointer, target, dataWords, pointerCount);
    return new StructBuilder(this.arena, target, dataWords, pointerCount);
  }

  /** A struct with no fields: cloudflared writes it as offset -1 and no sections. */
  setEmptyStruct(index: number): this {
    writeWord(this.arena, this.pointerWord(index), -1 << 2, 0);
    return this;
  }

  setData(index: number, bytes: Buffer): this {
    const pointer = this.pointerWord(index);
    const target = this.arena.allocate(Math.ceil(bytes.length / WORD));
    bytes.copy(this.arena.bytes, target * WORD);
    listPointer(this.arena, pointer, target, 2, bytes.length);
    return this;
  }

  setText(index: number, text: string): this {
    return this.setData(index, Buffer.concat([Buffer.from(text, 'utf8'), Buffer.alloc(1)]));
  }

  setCapability(index: number, capIndex: number): this {
    writeWord(this.arena, this.pointerWord(index), 3, capIndex);
    return this;
  }

  /** A List(Text). */
  setTextList(index: number, texts: readonly string[]): this {
    const pointer = this.pointerWord(index);
    const first = this.arena.allocate(texts.length);
    listPointer(this.arena, pointer, first, 6, texts.length);
    texts.forEach((text, element) => new StructBuilder(this.arena, first + element, 0, 1).setText(0, text));
    return this;
  }

  /** A List(struct) of `count` elements of the given size. */
  initStructList(index: number, count: number, dataWords: number, pointerCount: number): StructBuilder[] {
    const pointer = this.pointerWord(index);
    const size = dataWords + pointerCount;
    const tag = this.arena.allocate(1 + count * size);
    writeWord(this.arena, tag, count << 2, dataWords | (pointerCount << 16));
    listPointer(this.arena, pointer, tag, 7, count * size);
    return Array.from({ length: count }, (_, element) => new StructBuilder(this.arena, tag + 1 + element * size, dataWords, pointerCount));
  }
}

/** Builds a one-segment message whose root is a struct of the given size; `fill` writes it. */
export function buildMessage(dataWords: number, pointerCount: number, fill: (root: StructBuilder) => void): Buffer {
  const arena = new Arena();
  const rootPointer = arena.allocate(1);
  const root = arena.allocate(dataWords + pointerCount);
  structPointer(arena, rootPointer, root, dataWords, pointerCount);
  fill(new StructBuilder(arena, root, dataWords, pointerCount));
  return frame(arena.segment());
}
