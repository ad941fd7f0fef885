/**
 * GGUF reader (versions 2 and 3): metadata of every value type, tensor infos, alignment.
 *
 * Only the header is parsed up front (streamed in 1 MiB reads, so a vocabulary with 280k merges is
 * fine); tensor data is read one tensor at a time with {@linkcode GgufFile.readTensor}, so a 4 GB model
 * never needs 8 GB of RAM.
 *
 * File layout (little-endian): magic "GGUF", u32 version, u64 tensor count, u64 metadata count,
 * metadata (string key, u32 type, value)…, tensor infos (string name, u32 n_dims, u64 ne[n_dims],
 * u32 ggml type, u64 offset)…, padding to `general.alignment` (default 32), tensor data.
 *
 * @module
 */

import { ModelFormatError } from "../errors.ts";

/** A GGUF metadata value. Numeric arrays become typed arrays; u64/i64 become `bigint` when unsafe. */
export type GgufValue =
  | number
  | bigint
  | boolean
  | string
  | string[]
  | boolean[]
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigUint64Array
  | BigInt64Array
  | GgufValue[];

/** One tensor's description from the header. */
export interface GgufTensorInfo {
  /** Tensor name, e.g. `"blk.0.attn_q.weight"`. */
  name: string;
  /** Dimensions, `dims[0]` = ne0 = the row length. */
  dims: number[];
  /** The ggml type id (0 = F32, 1 = F16, 2 = Q4_0, 8 = Q8_0, 12 = Q4_K, 14 = Q6_K, 30 = BF16, …). */
  type: number;
  /** Byte offset of the data, relative to the start of the data section. */
  offset: number;
  /** Number of elements (product of dims). */
  nElements: number;
}

const enum T {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
}

const SCALAR_SIZE: Record<number, number> = {
  0: 1,
  1: 1,
  2: 2,
  3: 2,
  4: 4,
  5: 4,
  6: 4,
  7: 1,
  10: 8,
  11: 8,
  12: 8,
};

/** Streams the header through a growing window of the file. */
class HeaderReader {
  #file: Deno.FsFile;
  #path: string;
  #buf = new Uint8Array(0);
  #view = new DataView(this.#buf.buffer);
  #start = 0; // file offset of #buf[0]
  #pos = 0; // absolute file offset of the cursor
  #eof = false;
  #decoder = new TextDecoder("utf-8", { fatal: false });

  constructor(file: Deno.FsFile, path: string) {
    this.#file = file;
    this.#path = path;
  }

  get pos(): number {
    return this.#pos;
  }

  async ensure(n: number): Promise<void> {
    const have = this.#start + this.#buf.length - this.#pos;
    if (have >= n) return;
    const keep = this.#buf.subarray(this.#pos - this.#start);
    const want = Math.max(n - keep.length, 1 << 20);
    const next = new Uint8Array(keep.length + want);
    next.set(keep);
    let filled = keep.length;
    while (filled < keep.length + want && !this.#eof) {
      const got = await this.#file.read(next.subarray(filled));
      if (got === null) this.#eof = true;
      else filled += got;
    }
    this.#start = this.#pos;
    this.#buf = next.subarray(0, filled);
    this.#view = new DataView(this.#buf.buffer, this.#buf.byteOffset, this.#buf.byteLength);
    if (filled < n) {
      throw new ModelFormatError(
        `Cannot read ${this.#path}: file is truncated (header ends at byte ${
          this.#start + filled
        }); re-download it`,
      );
    }
  }

  #at(n: number): number {
    const o = this.#pos - this.#start;
    this.#pos += n;
    return o;
  }

  async u32(): Promise<number> {
    await this.ensure(4);
    return this.#view.getUint32(this.#at(4), true);
  }

  async u64(): Promise<number> {
    await this.ensure(8);
    const v = this.#view.getBigUint64(this.#at(8), true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new ModelFormatError(
        `Cannot read ${this.#path}: a size field is ${v}, which is not plausible; is the file corrupt?`,
      );
    }
    return Number(v);
  }

  async string(): Promise<string> {
    const n = await this.u64();
    await this.ensure(n);
    const o = this.#at(n);
    return this.#decoder.decode(this.#buf.subarray(o, o + n));
  }

  async scalar(type: number): Promise<number | bigint | boolean> {
    const size = SCALAR_SIZE[type];
    await this.ensure(size);
    const v = this.#view;
    const o = this.#at(size);
    switch (type) {
      case T.U8:
        return v.getUint8(o);
      case T.I8:
        return v.getInt8(o);
      case T.U16:
        return v.getUint16(o, true);
      case T.I16:
        return v.getInt16(o, true);
      case T.U32:
        return v.getUint32(o, true);
      case T.I32:
        return v.getInt32(o, true);
      case T.F32:
        return v.getFloat32(o, true);
      case T.BOOL:
        return v.getUint8(o) !== 0;
      case T.U64:
        return safeNumber(v.getBigUint64(o, true));
      case T.I64:
        return safeNumber(v.getBigInt64(o, true));
      case T.F64:
        return v.getFloat64(o, true);
    }
    throw new ModelFormatError(`Cannot read ${this.#path}: unknown metadata value type ${type}`);
  }

  /** Reads `n` scalars of `type` into a typed array (copied, so alignment is never an issue). */
  async typedArray(type: number, n: number): Promise<GgufValue> {
    const size = SCALAR_SIZE[type];
    await this.ensure(n * size);
    const o = this.#at(n * size);
    const bytes = this.#buf.slice(o, o + n * size);
    switch (type) {
      case T.U8:
        return bytes;
      case T.I8:
        return new Int8Array(bytes.buffer);
      case T.U16:
        return new Uint16Array(bytes.buffer);
      case T.I16:
        return new Int16Array(bytes.buffer);
      case T.U32:
        return new Uint32Array(bytes.buffer);
      case T.I32:
        return new Int32Array(bytes.buffer);
      case T.F32:
        return new Float32Array(bytes.buffer);
      case T.BOOL:
        return Array.from(bytes, (b) => b !== 0);
      case T.U64:
        return new BigUint64Array(bytes.buffer);
      case T.I64:
        return new BigInt64Array(bytes.buffer);
      case T.F64:
        return new Float64Array(bytes.buffer);
    }
    throw new ModelFormatError(`Cannot read ${this.#path}: unknown array element type ${type}`);
  }

  async value(type: number): Promise<GgufValue> {
    if (type === T.STRING) return await this.string();
    if (type === T.ARRAY) {
      const elemType = await this.u32();
      const n = await this.u64();
      if (elemType === T.STRING) {
        const out: string[] = new Array(n);
        for (let i = 0; i < n; i++) out[i] = await this.string();
        return out;
      }
      if (elemType === T.ARRAY) {
        const out: GgufValue[] = [];
        for (let i = 0; i < n; i++) out.push(await this.value(T.ARRAY));
        return out;
      }
      if (!(elemType in SCALAR_SIZE)) {
        throw new ModelFormatError(`Cannot read ${this.#path}: unknown array element type ${elemType}`);
      }
      return await this.typedArray(elemType, n);
    }
    if (!(type in SCALAR_SIZE)) {
      throw new ModelFormatError(`Cannot read ${this.#path}: unknown metadata type ${type}`);
    }
    return await this.scalar(type);
  }
}

function safeNumber(v: bigint): number | bigint {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
}

/**
 * An open GGUF file: parsed header plus on-demand tensor reads. Close it when done.
 *
 * @example
 * ```ts
 * import { GgufFile } from "./gguf.ts";
 * const f = await GgufFile.open("../shared/models/stories260K.gguf");
 * console.log(f.metadata.get("general.architecture"), f.tensors.length);
 * const bytes = await f.readTensor("output_norm.weight");
 * console.log(bytes.byteLength);
 * f.close();
 * ```
 */
export class GgufFile {
  /** The path it was opened from. */
  readonly path: string;
  /** GGUF version (2 or 3). */
  readonly version: number;
  /** Metadata key → value, in file order. */
  readonly metadata: Map<string, GgufValue>;
  /** Tensor infos, in file order. */
  readonly tensors: GgufTensorInfo[];
  /** Absolute file offset of the tensor data section. */
  readonly dataOffset: number;
  /** Data alignment (`general.alignment`, default 32). */
  readonly alignment: number;
  /** File size in bytes. */
  readonly fileSize: number;
  #file: Deno.FsFile;
  #byName: Map<string, GgufTensorInfo>;

  private constructor(
    path: string,
    file: Deno.FsFile,
    fields: {
      version: number;
      metadata: Map<string, GgufValue>;
      tensors: GgufTensorInfo[];
      dataOffset: number;
      alignment: number;
      fileSize: number;
    },
  ) {
    this.path = path;
    this.#file = file;
    this.version = fields.version;
    this.metadata = fields.metadata;
    this.tensors = fields.tensors;
    this.dataOffset = fields.dataOffset;
    this.alignment = fields.alignment;
    this.fileSize = fields.fileSize;
    this.#byName = new Map(this.tensors.map((t) => [t.name, t]));
  }

  /**
   * Opens and parses the header of a GGUF file. Throws {@linkcode ModelFormatError} for a missing
   * file, a non-GGUF file, an unsupported version or a truncated header.
   */
  static async open(path: string): Promise<GgufFile> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new ModelFormatError(`Cannot open model ${path}: no such file; check the path`);
      }
      if (e instanceof Deno.errors.PermissionDenied) {
        throw new ModelFormatError(`Cannot open model ${path}: permission denied (run with --allow-read)`);
      }
      throw new ModelFormatError(`Cannot open model ${path}: ${(e as Error).message}`);
    }
    try {
      const stat = await file.stat();
      if (stat.isDirectory) {
        throw new ModelFormatError(`Cannot open model ${path}: it is a directory, not a GGUF file`);
      }
      const r = new HeaderReader(file, path);
      await r.ensure(4).catch(() => {
        throw new ModelFormatError(`Cannot read ${path}: not a GGUF file (${stat.size} bytes, too short)`);
      });
      const magic = await r.u32();
      if (magic !== 0x46554747) {
        const b = new Uint8Array(new Uint32Array([magic]).buffer);
        const shown = [...b].map((
          c,
        ) => (c >= 32 && c < 127 ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, "0")}`))
          .join("");
        throw new ModelFormatError(
          `Cannot read ${path}: not a GGUF file (magic is '${shown}', expected 'GGUF')`,
        );
      }
      const version = await r.u32();
      if (version !== 2 && version !== 3) {
        throw new ModelFormatError(
          `Cannot read ${path}: GGUF version ${version} is not supported (2 and 3 are); re-convert with a current llama.cpp`,
        );
      }
      const nTensors = await r.u64();
      const nKv = await r.u64();
      const metadata = new Map<string, GgufValue>();
      for (let i = 0; i < nKv; i++) {
        const key = await r.string();
        const type = await r.u32();
        metadata.set(key, await r.value(type));
      }
      const tensors: GgufTensorInfo[] = [];
      for (let i = 0; i < nTensors; i++) {
        const name = await r.string();
        const nDims = await r.u32();
        if (nDims > 4) {
          throw new ModelFormatError(`Cannot read ${path}: tensor ${name} has ${nDims} dimensions (max 4)`);
        }
        const dims: number[] = [];
        for (let d = 0; d < nDims; d++) dims.push(await r.u64());
        const type = await r.u32();
        const offset = await r.u64();
        tensors.push({ name, dims, type, offset, nElements: dims.reduce((a, b) => a * b, 1) });
      }
      const alignValue = metadata.get("general.alignment");
      const alignment = typeof alignValue === "number" && alignValue > 0 ? alignValue : 32;
      const dataOffset = Math.ceil(r.pos / alignment) * alignment;
      return new GgufFile(path, file, {
        version,
        metadata,
        tensors,
        dataOffset,
        alignment,
        fileSize: stat.size,
      });
    } catch (e) {
      file.close();
      throw e;
    }
  }

  /** The tensor info for `name`, or undefined. */
  tensor(name: string): GgufTensorInfo | undefined {
    return this.#byName.get(name);
  }

  /**
   * Reads `byteLength` bytes of tensor `name`'s data (the caller knows the size from the type table).
   * Throws {@linkcode ModelFormatError} if the tensor is missing or the file is truncated.
   */
  async readTensor(name: string, byteLength?: number): Promise<Uint8Array> {
    const info = this.#byName.get(name);
    if (!info) throw new ModelFormatError(`Cannot read tensor ${name} from ${this.path}: no such tensor`);
    const start = this.dataOffset + info.offset;
    const size = byteLength ?? this.#nextOffset(info) - info.offset;
    if (start + size > this.fileSize) {
      throw new ModelFormatError(
        `Cannot read tensor ${name} from ${this.path}: file is truncated (needs bytes up to ${
          start + size
        }, has ${this.fileSize})`,
      );
    }
    const out = new Uint8Array(size);
    await this.#file.seek(start, Deno.SeekMode.Start);
    let filled = 0;
    while (filled < size) {
      const got = await this.#file.read(out.subarray(filled));
      if (got === null) {
        throw new ModelFormatError(`Cannot read tensor ${name} from ${this.path}: unexpected end of file`);
      }
      filled += got;
    }
    return out;
  }

  /** Offset (data-relative) where the tensor after `info` starts, or the end of the file. */
  #nextOffset(info: GgufTensorInfo): number {
    let next = this.fileSize - this.dataOffset;
    for (const t of this.tensors) if (t.offset > info.offset && t.offset < next) next = t.offset;
    return next;
  }

  /** Closes the file handle. */
  close(): void {
    try {
      this.#file.close();
    } catch {
      // already closed
    }
  }
}
