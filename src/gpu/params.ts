/**
 * Uniform structs declared once, in TypeScript: the same declaration emits the WGSL struct text and
 * packs the values, so host and shader can never disagree on field order (STYLE.md lesson 5).
 *
 * Only 4-byte scalars (`u32`, `i32`, `f32`) are allowed, so the WGSL layout is simply field i at
 * byte 4·i, with the struct rounded up to 16 bytes.
 *
 * @module
 */

/** The scalar field types a uniform struct may hold. */
export type ScalarType = "u32" | "i32" | "f32";

/** A uniform struct layout: field name → scalar type, in declaration order. */
export type ParamFields = Record<string, ScalarType>;

/**
 * A declared uniform struct: `wgsl()` gives its WGSL text, `pack()` its bytes.
 *
 * @example
 * ```ts
 * import { params } from "./params.ts";
 * const Norm = params("NormParams", { rows: "u32", cols: "u32", eps: "f32" });
 * console.log(Norm.wgsl());               // struct NormParams { rows: u32, cols: u32, eps: f32, }
 * const bytes = Norm.pack({ rows: 3, cols: 64, eps: 1e-5 }); // 16 bytes
 * console.log(bytes.byteLength);
 * ```
 */
export class ParamStruct<F extends ParamFields> {
  /** The WGSL struct name. */
  readonly name: string;
  /** Field name → type, in order. */
  readonly fields: F;
  /** Packed size in bytes (a multiple of 16, as uniform buffers require). */
  readonly byteSize: number;

  /** Declares a struct; prefer the {@linkcode params} helper. */
  constructor(name: string, fields: F) {
    this.name = name;
    this.fields = fields;
    this.byteSize = Math.max(16, Math.ceil(Object.keys(fields).length / 4) * 16);
  }

  /** The WGSL declaration of this struct. */
  wgsl(): string {
    const body = Object.entries(this.fields).map(([k, t]) => `${k}: ${t},`).join(" ");
    return `struct ${this.name} { ${body} }`;
  }

  /**
   * Packs values into a new ArrayBuffer of `byteSize` bytes.
   * Throws a `TypeError` if a field is missing or unknown, so a rename cannot slip through.
   */
  pack(values: { [K in keyof F]: number }): ArrayBuffer {
    const buf = new ArrayBuffer(this.byteSize);
    const u = new Uint32Array(buf);
    const i = new Int32Array(buf);
    const f = new Float32Array(buf);
    const names = Object.keys(this.fields);
    for (const k of Object.keys(values)) {
      if (!(k in this.fields)) throw new TypeError(`Cannot pack ${this.name}: unknown field "${k}"`);
    }
    names.forEach((k, idx) => {
      const v = (values as Record<string, number>)[k];
      if (v === undefined) throw new TypeError(`Cannot pack ${this.name}: missing field "${k}"`);
      const t = this.fields[k];
      if (t === "f32") f[idx] = v;
      else if (t === "i32") i[idx] = v;
      else {
        if (v < 0 || !Number.isInteger(v)) {
          throw new RangeError(
            `Cannot pack ${this.name}.${k}: u32 needs a non-negative integer: current value is ${v}`,
          );
        }
        u[idx] = v;
      }
    });
    return buf;
  }
}

/**
 * Declares a uniform struct.
 *
 * @example
 * ```ts
 * import { params } from "./params.ts";
 * const P = params("RopeParams", { pos: "u32", headDim: "u32", theta: "f32" });
 * console.log(P.byteSize); // 16
 * ```
 */
export function params<F extends ParamFields>(name: string, fields: F): ParamStruct<F> {
  return new ParamStruct(name, fields);
}
