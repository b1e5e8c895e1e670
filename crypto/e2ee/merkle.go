package e2ee

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
)

// The commit's Merkle tree is RFC 9162 section 2.1 with our own leaf encoding, so each recipient can check its
// sealed key against the sender's one signature without downloading everyone else's (docs/e2ee.md section 4.5).

func leafHash(recipient, keyPackage Hash, sealed []byte) Hash {
	h := sha256.New()
	h.Write([]byte{0x00})
	h.Write(recipient[:])
	h.Write(keyPackage[:])
	h.Write(binary.BigEndian.AppendUint16(nil, uint16(len(sealed))))
	h.Write(sealed)
	var out Hash
	h.Sum(out[:0])
	return out
}

func nodeHash(left, right Hash) Hash {
	var buf [1 + 2*32]byte
	buf[0] = 0x01
	copy(buf[1:], left[:])
	copy(buf[33:], right[:])
	return sha256.Sum256(buf[:])
}

// split is RFC 9162's k: the largest power of two smaller than n (n > 1).
func split(n int) int { return 1 << (bits.Len(uint(n-1)) - 1) }

// merkleTree returns the root over leaves and every leaf's audit path, leaf to root, in O(n log n) hashes. A tree
// needs at least one leaf (a committer alone signs the zero root without building one, docs/e2ee.md section 4.6):
// no leaves is ErrMalformed, as in the web client, rather than the out-of-range panic split(0) would lead to.
func merkleTree(leaves []Hash) (Hash, [][]Hash, error) {
	if len(leaves) == 0 {
		return Hash{}, nil, errNoLeaves
	}
	paths := make([][]Hash, len(leaves))
	return subtree(leaves, paths), paths, nil
}

var errNoLeaves = malformed("merkle tree", "leaves", "none")

func subtree(leaves []Hash, paths [][]Hash) Hash {
	if len(leaves) == 1 {
		return leaves[0]
	}
	k := split(len(leaves))
	left := subtree(leaves[:k], paths[:k])
	right := subtree(leaves[k:], paths[k:])
	for i := range paths[:k] {
		paths[i] = append(paths[i], right)
	}
	for i := range paths[k:] {
		paths[k+i] = append(paths[k+i], left)
	}
	return nodeHash(left, right)
}

// merkleRoot is the root alone, for a sender that needs no audit paths; no leaves is ErrMalformed (merkleTree).
func merkleRoot(leaves []Hash) (Hash, error) {
	if len(leaves) == 0 {
		return Hash{}, errNoLeaves
	}
	return root(leaves), nil
}

func root(leaves []Hash) Hash {
	if len(leaves) == 1 {
		return leaves[0]
	}
	k := split(len(leaves))
	return nodeHash(root(leaves[:k]), root(leaves[k:]))
}

// verifyInclusion is RFC 9162 section 2.1.3.2.
func verifyInclusion(leaf Hash, index, size uint64, path []Hash, root Hash) bool {
	r, ok := rootFromPath(leaf, index, size, path)
	return ok && hashEqual(r, root)
}

// rootFromPath is the root that path proves leaf to be under, or false if the path does not fit the tree size.
func rootFromPath(leaf Hash, index, size uint64, path []Hash) (Hash, bool) {
	if index >= size {
		return Hash{}, false
	}
	fn, sn := index, size-1
	r := leaf
	for _, p := range path {
		if sn == 0 {
			return Hash{}, false
		}
		if fn&1 == 1 || fn == sn {
			r = nodeHash(p, r)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = nodeHash(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	return r, sn == 0
}
