/**
 * The protocol-buffer encoding, by hand, for the few messages TensorBoard reads (lib/tensorboard/events.ts): varints,
 * 64-bit doubles, 32-bit floats, length-delimited strings, bytes and sub-messages, packed repeated doubles. Fields
 * are written in the order given; a field left at its default is left out, as proto3 encoders do.
 */
const utf8 = new TextEncoder();

/** One message being written. */
export class ProtoWriter {
  private chunks: Uint8Array[] = [];
  private size = 0;

  private push(b: Uint8Array): void {
    this.chunks.push(b);
    this.size += b.length;
  }

  private varint(v: number): void {
    // non-negative integers up to 2^53; negative int64 values take ten bytes (two's complement)
    const out: number[] = [];
    if (v < 0) {
      let b = BigInt.asUintN(64, BigInt(Math.trunc(v)));
      while (b >= 0x80n) {
        out.push(Number(b & 0x7fn) | 0x80);
        b >>= 7n;
      }
      out.push(Number(b));
    } else {
      let n = Math.trunc(v);
      while (n >= 0x80) {
        out.push((n % 0x80) | 0x80);
        n = Math.floor(n / 0x80);
      }
      out.push(n);
    }
    this.push(Uint8Array.from(out));
  }

  private key(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  /** int32, int64, uint64, bool and enum fields (wire type 0). */
  int(field: number, v: number | boolean, always = false): this {
    const n = typeof v === 'boolean' ? (v ? 1 : 0) : v;
    if (n === 0 && !always) return this;
    this.key(field, 0);
    this.varint(n);
    return this;
  }

  /** double fields (wire type 1, little-endian IEEE 754). */
  double(field: number, v: number, always = false): this {
    if (v === 0 && !Object.is(v, -0) && !always) return this;
    this.key(field, 1);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    this.push(b);
    return this;
  }

  /** float fields (wire type 5). */
  float(field: number, v: number, always = false): this {
    if (v === 0 && !Object.is(v, -0) && !always) return this;
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.push(b);
    return this;
  }

  /** bytes and embedded messages (wire type 2). */
  bytes(field: number, v: Uint8Array, always = false): this {
    if (v.length === 0 && !always) return this;
    this.key(field, 2);
    this.varint(v.length);
    this.push(v);
    return this;
  }

  /** string fields (UTF-8, wire type 2). */
  string(field: number, v: string, always = false): this {
    return this.bytes(field, utf8.encode(v), always);
  }

  /** An embedded message (written even when empty: its presence can matter, as for a oneof member). */
  message(field: number, m: ProtoWriter): this {
    return this.bytes(field, m.finish(), true);
  }

  /** repeated double, packed (proto3's default). */
  packedDoubles(field: number, vs: ArrayLike<number>): this {
    if (vs.length === 0) return this;
    const b = new Uint8Array(8 * vs.length);
    const dv = new DataView(b.buffer);
    for (let i = 0; i < vs.length; i++) dv.setFloat64(8 * i, vs[i]!, true);
    return this.bytes(field, b);
  }

  /** The encoded message. */
  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}
