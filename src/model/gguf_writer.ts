/**
 * A GGUF writer: the inverse of {@linkcode GgufFile}. Used to build synthetic models and test files.
 * Metadata values carry an explicit GGUF type so every value type can be written.
 *
 * @module
 */

/** GGUF metadata value type names. */
export type GgufTypeName =
  | "u8"
  | "i8"
  | "u16"
  | "i16"
  | "u32"
  | "i32"
  | "f32"
  | "bool"
  | "string"
  | "u64"
  | "i64"
  | "f64";

const TYPE_ID: Record<GgufTypeName, number> = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  u64: 10,
  i64: 11,
  f64: 12,
};

/** One metadata entry: a scalar, or an array when `array` is true (`value` is then an array). */
export interface GgufMetadataEntry {
  /** The key, e.g. `"llama.block_count"`. */
  key: string;
  /** The element type. */
  type: GgufTypeName;
  /** True for an array of `type`. */
  array?: boolean;
  /** The value: number / bigint / boolean / string, or an array of them. */
  value: unknown;
}

/** One tensor to write: raw bytes already in the ggml type's encoding. */
export interface GgufTensorEntry {
  /** Tensor name. */
  name: string;
  /** Dimensions, ne0 (row length) first. */
  dims: number[];
  /** ggml type id. */
  type: number;
  /** Raw data. */
  data: Uint8Array;
}

class ByteSink {
  parts: Uint8Array[] = [];
  length = 0;
  push(bytes: Uint8Array): void {
    this.parts.push(bytes);
    this.length += bytes.length;
  }
  scalar(type: GgufTypeName, v: unknown): void {
    if (type === "string") {
      const s = new TextEncoder().encode(String(v));
      this.scalar("u64", s.length);
      this.push(s);
      return;
    }
    const size =
      { u8: 1, i8: 1, bool: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, u64: 8, i64: 8, f64: 8 }[type];
    const b = new Uint8Array(size);
    const d = new DataView(b.buffer);
    const n = Number(v);
    switch (type) {
      case "u8":
        d.setUint8(0, n);
        break;
      case "i8":
        d.setInt8(0, n);
        break;
      case "bool":
        d.setUint8(0, v ? 1 : 0);
        break;
      case "u16":
        d.setUint16(0, n, true);
        break;
      case "i16":
        d.setInt16(0, n, true);
        break;
      case "u32":
        d.setUint32(0, n, true);
        break;
      case "i32":
        d.setInt32(0, n, true);
        break;
      case "f32":
        d.setFloat32(0, n, true);
        break;
      case "u64":
        d.setBigUint64(0, BigInt(v as number | bigint), true);
        break;
      case "i64":
        d.setBigInt64(0, BigInt(v as number | bigint), true);
        break;
      case "f64":
        d.setFloat64(0, n, true);
        break;
    }
    this.push(b);
  }
  concat(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

/** A tensor's place in a GGUF file, without its data (for {@linkcode ggufHeader}). */
export interface GgufTensorLayout {
  /** Tensor name. */
  name: string;
  /** Dimensions, ne0 (row length) first. */
  dims: number[];
  /** ggml type id. */
  type: number;
  /** Bytes of data. */
  byteLength: number;
}

/** A GGUF header and where each tensor's data goes. */
export interface GgufHeader {
  /** Magic, counts, metadata, tensor infos and the padding up to the data section. */
  bytes: Uint8Array;
  /** Offset of each tensor's data, relative to the data section (aligned). */
  offsets: number[];
  /** Bytes of the data section, including the padding between tensors (none after the last). */
  dataBytes: number;
  /** The alignment used. */
  alignment: number;
}

/**
 * Serialises everything of a GGUF file that precedes the tensor data, and lays the tensors out.
 * `writeGguf` and `writeGgufStream` both use it.
 *
 * @example
 * ```ts
 * import { ggufHeader } from "./gguf_writer.ts";
 * const h = ggufHeader({ metadata: [], tensors: [{ name: "x", dims: [4], type: 0, byteLength: 16 }] });
 * console.log(h.bytes.byteLength % 32, h.offsets, h.dataBytes); // 0 [0] 16
 * ```
 */
export function ggufHeader(
  file: { version?: number; alignment?: number; metadata: GgufMetadataEntry[]; tensors: GgufTensorLayout[] },
): GgufHeader {
  const alignment = file.alignment ?? 32;
  const s = new ByteSink();
  s.push(new TextEncoder().encode("GGUF"));
  s.scalar("u32", file.version ?? 3);
  s.scalar("u64", file.tensors.length);
  s.scalar("u64", file.metadata.length);
  for (const m of file.metadata) {
    s.scalar("string", m.key);
    if (m.array) {
      const arr = [...(m.value as Iterable<unknown>)];
      s.scalar("u32", 9);
      s.scalar("u32", TYPE_ID[m.type]);
      s.scalar("u64", arr.length);
      for (const v of arr) s.scalar(m.type, v);
    } else {
      s.scalar("u32", TYPE_ID[m.type]);
      s.scalar(m.type, m.value);
    }
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of file.tensors) {
    offsets.push(offset);
    offset = Math.ceil((offset + t.byteLength) / alignment) * alignment;
  }
  file.tensors.forEach((t, i) => {
    s.scalar("string", t.name);
    s.scalar("u32", t.dims.length);
    for (const d of t.dims) s.scalar("u64", d);
    s.scalar("u32", t.type);
    s.scalar("u64", offsets[i]);
  });
  s.push(new Uint8Array((alignment - (s.length % alignment)) % alignment));
  const n = file.tensors.length;
  const dataBytes = n === 0 ? 0 : offsets[n - 1] + file.tensors[n - 1].byteLength;
  return { bytes: s.concat(), offsets, dataBytes, alignment };
}

/**
 * Serialises a GGUF file (version 2 or 3) into bytes.
 *
 * @example
 * ```ts
 * import { writeGguf } from "./gguf_writer.ts";
 * const bytes = writeGguf({
 *   metadata: [{ key: "general.architecture", type: "string", value: "llama" }],
 *   tensors: [{ name: "x", dims: [4], type: 0, data: new Uint8Array(16) }],
 * });
 * console.log(bytes.byteLength);
 * ```
 */
export function writeGguf(
  file: { version?: number; alignment?: number; metadata: GgufMetadataEntry[]; tensors: GgufTensorEntry[] },
): Uint8Array {
  const h = ggufHeader({ ...file, tensors: file.tensors.map((t) => ({ ...t, byteLength: t.data.length })) });
  const out = new Uint8Array(h.bytes.length + h.dataBytes);
  out.set(h.bytes);
  file.tensors.forEach((t, i) => out.set(t.data, h.bytes.length + h.offsets[i]));
  return out;
}

/** A tensor to stream: its layout and a producer of its bytes, chunk by chunk. */
export interface GgufTensorSource extends GgufTensorLayout {
  /** Yields the tensor's bytes in order; the chunks must add up to `byteLength`. */
  chunks(): Iterable<Uint8Array> | AsyncIterable<Uint8Array>;
}

/** Anything with an async `write` that may write fewer bytes than asked (a `Deno.FsFile`). */
export interface GgufSink {
  /** Writes some of `p`; returns how many bytes were written. */
  write(p: Uint8Array): Promise<number>;
}

async function writeAll(sink: GgufSink, bytes: Uint8Array): Promise<void> {
  for (let o = 0; o < bytes.length;) o += await sink.write(bytes.subarray(o));
}

/**
 * Writes a GGUF file tensor by tensor, so that only one chunk of one tensor is ever in memory (a 27 GB
 * model needs a few MB). Throws a `RangeError` when a tensor yields more or fewer bytes than its
 * `byteLength`. Returns the number of bytes written.
 *
 * @example
 * ```ts ignore
 * import { writeGgufStream } from "./gguf_writer.ts";
 * using f = await Deno.create("/tmp/x.gguf");
 * await writeGgufStream(f, {
 *   metadata: [{ key: "general.architecture", type: "string", value: "llama" }],
 *   tensors: [{ name: "x", dims: [4], type: 0, byteLength: 16, chunks: () => [new Uint8Array(16)] }],
 * });
 * ```
 */
export async function writeGgufStream(
  sink: GgufSink,
  file: { version?: number; alignment?: number; metadata: GgufMetadataEntry[]; tensors: GgufTensorSource[] },
): Promise<number> {
  const h = ggufHeader(file);
  await writeAll(sink, h.bytes);
  let at = 0; // position in the data section
  for (const [i, t] of file.tensors.entries()) {
    if (h.offsets[i] > at) await writeAll(sink, new Uint8Array(h.offsets[i] - at));
    at = h.offsets[i];
    let written = 0;
    for await (const chunk of t.chunks()) {
      written += chunk.length;
      if (written > t.byteLength) break;
      await writeAll(sink, chunk);
    }
    if (written !== t.byteLength) {
      throw new RangeError(
        `Cannot write GGUF tensor "${t.name}": its chunks must add up to ${t.byteLength} bytes: current total is ${written}`,
      );
    }
    at += written;
  }
  return h.bytes.length + h.dataBytes;
}
