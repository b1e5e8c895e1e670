// Byte helpers and the strict TLS-presentation-language reader and writer of docs/e2ee.md section 3.

import { E2EEError, ErrMalformed } from './errors.js';

export const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

export function hex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

export function fromHex(s: string): Uint8Array {
  if (s.length % 2 !== 0 || /[^0-9a-fA-F]/.test(s)) throw new Error('invalid hex');
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Constant-time equality of two byte strings (their lengths are public). */
export function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

export function compare(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  return a.length - b.length;
}

export function wipe(...bs: (Uint8Array | undefined | null)[]): void {
  for (const b of bs) b?.fill(0);
}

// Go's maxTime: times far from int64 overflow. JS numbers hold integers exactly up to 2^53 − 1, so a
// value above that is refused as out of range (every honest time, sequence and epoch is far below it).
const maxSafe = BigInt(Number.MAX_SAFE_INTEGER);

/** Reader parses one message strictly and remembers the first failure with the field it happened in. */
export class Reader {
  private off = 0;
  err: E2EEError | null = null;
  constructor(
    readonly what: string,
    private readonly b: Uint8Array,
  ) {}

  fail(field: string, msg: string): void {
    if (!this.err) this.err = new E2EEError(ErrMalformed, `${this.what}.${field}: ${msg}`);
  }

  ok(): boolean {
    return this.err === null;
  }

  private take(field: string, n: number): Uint8Array {
    if (!this.ok()) return new Uint8Array(0);
    if (this.b.length - this.off < n) {
      this.fail(field, `truncated, want ${n} bytes`);
      return new Uint8Array(0);
    }
    const v = this.b.subarray(this.off, this.off + n);
    this.off += n;
    return v;
  }

  private uint(field: string, n: number): number {
    const v = this.take(field, n);
    let x = 0;
    for (const c of v) x = x * 256 + c;
    return x;
  }

  version(): void {
    const v = this.u8('version');
    if (this.ok() && v !== 2) this.fail('version', `unsupported version ${v}`);
  }
  u8(field: string): number {
    return this.uint(field, 1);
  }
  u16(field: string): number {
    return this.uint(field, 2);
  }
  u24(field: string): number {
    return this.uint(field, 3);
  }
  u32(field: string): number {
    return this.uint(field, 4);
  }
  u64(field: string): number {
    const v = this.take(field, 8);
    if (!this.ok()) return 0;
    let x = 0n;
    for (const c of v) x = (x << 8n) | BigInt(c);
    if (x > maxSafe) {
      this.fail(field, 'value out of range');
      return 0;
    }
    return Number(x);
  }
  boolean(field: string): boolean {
    const v = this.u8(field);
    if (this.ok() && v > 1) this.fail(field, `boolean must be 0 or 1, got ${v}`);
    return v === 1;
  }
  fixed(field: string, n: number): Uint8Array {
    return this.take(field, n).slice();
  }
  private checkLen(field: string, v: Uint8Array, lo: number, hi: number): Uint8Array {
    if (this.ok() && (v.length < lo || v.length > hi)) this.fail(field, `length ${v.length} outside ${lo}..${hi}`);
    return v;
  }
  bytes(field: string, prefix: 2 | 3 | 4, lo: number, hi: number): Uint8Array {
    const n = this.uint(field, prefix);
    return this.checkLen(field, this.take(field, n).slice(), lo, hi);
  }
  text(field: string, lo: number, hi: number): string {
    const v = this.bytes(field, 2, lo, hi);
    if (!this.ok()) return '';
    try {
      return dec.decode(v);
    } catch {
      this.fail(field, 'not valid UTF-8');
      return '';
    }
  }
  /** A list of 32-byte hashes that must be strictly ascending. */
  sortedHashes(field: string, raw: Uint8Array, max: number): Uint8Array[] {
    if (!this.ok()) return [];
    if (raw.length % 32 !== 0 || raw.length / 32 > max) {
      this.fail(field, `length ${raw.length} is not a list of at most ${max} hashes`);
      return [];
    }
    const out: Uint8Array[] = [];
    for (let i = 0; i < raw.length; i += 32) {
      const h = raw.slice(i, i + 32);
      if (out.length > 0 && compare(out[out.length - 1], h) >= 0) {
        this.fail(field, `entry ${out.length} not strictly ascending`);
        return [];
      }
      out.push(h);
    }
    return out;
  }
  /** Splits a list of <u16> or <u32> items. */
  list(field: string, raw: Uint8Array, itemPrefix: 2 | 4, maxItems: number): Uint8Array[] {
    if (!this.ok()) return [];
    const r = new Reader(this.what, raw);
    const out: Uint8Array[] = [];
    while (r.remaining() > 0) {
      const item = r.bytes(field, itemPrefix, 0, Infinity);
      if (!r.ok()) {
        this.fail(field, `item ${out.length} truncated`);
        return [];
      }
      if (out.length === maxItems) {
        this.fail(field, `more than ${maxItems} items`);
        return [];
      }
      out.push(item);
    }
    return out;
  }
  remaining(): number {
    return this.b.length - this.off;
  }
  end(): void {
    if (this.ok() && this.remaining() !== 0) this.fail('end', `${this.remaining()} trailing bytes`);
    if (this.err) throw this.err;
  }
}

/** Writer builds one encoding. */
export class Writer {
  private parts: Uint8Array[] = [];
  u8(v: number): this {
    this.parts.push(Uint8Array.of(v & 0xff));
    return this;
  }
  u16(v: number): this {
    this.parts.push(Uint8Array.of((v >>> 8) & 0xff, v & 0xff));
    return this;
  }
  u24(v: number): this {
    this.parts.push(Uint8Array.of((v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff));
    return this;
  }
  u32(v: number): this {
    this.parts.push(Uint8Array.of((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff));
    return this;
  }
  u64(v: number | bigint): this {
    let x = BigInt(v);
    const b = new Uint8Array(8);
    for (let i = 7; i >= 0; i--) {
      b[i] = Number(x & 0xffn);
      x >>= 8n;
    }
    this.parts.push(b);
    return this;
  }
  raw(b: Uint8Array): this {
    this.parts.push(b);
    return this;
  }
  bytes(prefix: 2 | 3 | 4, b: Uint8Array): this {
    const max = prefix === 2 ? 0xffff : prefix === 3 ? 0xffffff : 0xffffffff;
    if (b.length > max) throw new E2EEError(ErrMalformed, `encode: ${b.length} bytes do not fit a <u${prefix * 8}> prefix`);
    if (prefix === 2) this.u16(b.length);
    else if (prefix === 3) this.u24(b.length);
    else this.u32(b.length);
    this.parts.push(b);
    return this;
  }
  text(s: string): this {
    return this.bytes(2, enc.encode(s));
  }
  finish(): Uint8Array {
    return concat(...this.parts);
  }
}

export function checkText(what: string, field: string, v: string, lo: number, hi: number): void {
  const n = enc.encode(v).length;
  if (n < lo || n > hi) throw new E2EEError(ErrMalformed, `${what}.${field}: length ${n} outside ${lo}..${hi}`);
}
