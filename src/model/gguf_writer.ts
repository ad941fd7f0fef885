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
    offset = Math.ceil((offset + t.data.length) / alignment) * alignment;
  }
  file.tensors.forEach((t, i) => {
    s.scalar("string", t.name);
    s.scalar("u32", t.dims.length);
    for (const d of t.dims) s.scalar("u64", d);
    s.scalar("u32", t.type);
    s.scalar("u64", offsets[i]);
  });
  s.push(new Uint8Array((alignment - (s.length % alignment)) % alignment));
  file.tensors.forEach((t, i) => {
    s.push(t.data);
    const end = offsets[i] + t.data.length;
    const next = i + 1 < file.tensors.length ? offsets[i + 1] : end;
    s.push(new Uint8Array(next - end));
  });
  return s.concat();
}
