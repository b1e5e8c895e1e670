// The commit's Merkle tree: RFC 9162 section 2.1 with docs/e2ee.md's leaf encoding (section 4.6).

import { sha256 } from '@noble/hashes/sha2.js';
import { concat, equal } from './bytes.js';
import { E2EEError, ErrMalformed } from './errors.js';

export function leafHash(recipient: Uint8Array, keyPackage: Uint8Array, sealed: Uint8Array): Uint8Array {
  return sha256(concat(Uint8Array.of(0), recipient, keyPackage, Uint8Array.of(sealed.length >>> 8, sealed.length & 0xff), sealed));
}

function nodeHash(l: Uint8Array, r: Uint8Array): Uint8Array {
  return sha256(concat(Uint8Array.of(1), l, r));
}

// split is RFC 9162's k: the largest power of two smaller than n (n > 1).
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

// A tree needs at least one leaf, as in crypto/e2ee (whose merkleTree/merkleRoot are only called with one or
// more): a committer alone signs a zero root without building a tree (docs/e2ee.md section 4.6). Without this
// check an empty list recursed until the stack overflowed, since split(0) leaves the whole list on each side.
function needLeaves(leaves: Uint8Array[]): void {
  if (leaves.length === 0) throw new E2EEError(ErrMalformed, 'Merkle tree of no leaves');
}

export function merkleRoot(leaves: Uint8Array[]): Uint8Array {
  needLeaves(leaves);
  return root(leaves);
}

function root(leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 1) return leaves[0];
  const k = split(leaves.length);
  return nodeHash(root(leaves.slice(0, k)), root(leaves.slice(k)));
}

/** merkleTree returns the root and every leaf's audit path, leaf to root; it throws E2EEError for no leaves. */
export function merkleTree(leaves: Uint8Array[]): { root: Uint8Array; paths: Uint8Array[][] } {
  needLeaves(leaves);
  const paths: Uint8Array[][] = leaves.map(() => []);
  const sub = (lo: number, hi: number): Uint8Array => {
    if (hi - lo === 1) return leaves[lo];
    const k = split(hi - lo);
    const left = sub(lo, lo + k);
    const right = sub(lo + k, hi);
    for (let i = lo; i < lo + k; i++) paths[i].push(right);
    for (let i = lo + k; i < hi; i++) paths[i].push(left);
    return nodeHash(left, right);
  };
  return { root: sub(0, leaves.length), paths };
}

/** verifyInclusion is RFC 9162 section 2.1.3.2. */
export function verifyInclusion(leaf: Uint8Array, index: number, size: number, path: Uint8Array[], root: Uint8Array): boolean {
  if (index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of path) {
    if (sn === 0) return false;
    if ((fn & 1) === 1 || fn === sn) {
      r = nodeHash(p, r);
      while ((fn & 1) === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(r, root);
}
