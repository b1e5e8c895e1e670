package e2ee

import (
	"crypto/sha256"
	"errors"
	"testing"
)

// An audit path alone does not fix the tree size (a path for 3 leaves can also fit 4); the bundle header signs
// the leaf count and clients check it, so these tests do not expect the size to be bound here.

// mth and path are RFC 9162 section 2.1.1 and 2.1.3.1 written as literally as possible, to check the O(n log n)
// construction the Authority uses.
func mth(d []Hash) Hash {
	if len(d) == 1 {
		return d[0]
	}
	k := split(len(d))
	return nodeHash(mth(d[:k]), mth(d[k:]))
}

func path(m int, d []Hash) []Hash {
	if len(d) == 1 {
		return nil
	}
	k := split(len(d))
	if m < k {
		return append(path(m, d[:k]), mth(d[k:]))
	}
	return append(path(m-k, d[k:]), mth(d[:k]))
}

func TestMerkle_MatchesRFC9162AndRefusesWrongProofs(t *testing.T) {
	for n := 1; n <= 70; n++ {
		leaves := make([]Hash, n)
		for i := range leaves {
			leaves[i] = leafHash(Hash{byte(i), byte(n)}, Hash{}, []byte{byte(i)})
		}
		root, paths, err := merkleTree(leaves)
		if err != nil {
			t.Fatal(err)
		}
		if r, err := merkleRoot(leaves); err != nil || root != mth(leaves) || root != r {
			t.Fatalf("n=%d: root differs from RFC 9162 MTH", n)
		}
		for i := range leaves {
			want := path(i, leaves)
			if len(paths[i]) != len(want) {
				t.Fatalf("n=%d i=%d: path length %d, RFC %d", n, i, len(paths[i]), len(want))
			}
			for j := range want {
				if paths[i][j] != want[j] {
					t.Fatalf("n=%d i=%d: path differs from RFC 9162 PATH at %d", n, i, j)
				}
			}
			if !verifyInclusion(leaves[i], uint64(i), uint64(n), paths[i], root) {
				t.Fatalf("n=%d i=%d: valid proof refused", n, i)
			}
			type proof struct {
				name  string
				leaf  Hash
				index uint64
				proof []Hash
			}
			wrong := []proof{
				{"other leaf", leafHash(Hash{0xff}, Hash{}, nil), uint64(i), paths[i]},
				{"index beyond size", leaves[i], uint64(n), paths[i]},
				{"extra hash", leaves[i], uint64(i), append(append([]Hash{}, paths[i]...), Hash{})},
			}
			if n > 1 {
				wrong = append(wrong,
					proof{"other index", leaves[i], uint64((i + 1) % n), paths[i]},
					proof{"truncated proof", leaves[i], uint64(i), paths[i][:len(paths[i])-1]})
			}
			for _, w := range wrong {
				if verifyInclusion(w.leaf, w.index, uint64(n), w.proof, root) {
					t.Fatalf("n=%d i=%d: %s accepted", n, i, w.name)
				}
			}
		}
	}
}

func TestMerkle_LeafAndNodeHashesAreDomainSeparated(t *testing.T) {
	var l, r Hash
	node := nodeHash(l, r)
	// A node hash must never equal the leaf hash of the same 64 bytes read as recipient || data.
	var raw [64]byte
	if leaf := leafHash(Hash(raw[:32]), Hash(raw[32:64]), raw[64:]); leaf == node {
		t.Fatal("leaf and node hashes collide")
	}
	if node != sha256.Sum256(append([]byte{1}, make([]byte, 64)...)) {
		t.Fatal("node hash is not SHA-256(0x01 || left || right)")
	}
}

// TestMerkle_NoLeavesIsMalformed: a tree of no leaves is an error, as the web client's `malformed`, never a panic
// (split(0) used to make merkleTree and merkleRoot index out of range).
func TestMerkle_NoLeavesIsMalformed(t *testing.T) {
	for _, leaves := range [][]Hash{nil, {}} {
		if _, paths, err := merkleTree(leaves); !errors.Is(err, ErrMalformed) || paths != nil {
			t.Fatalf("merkleTree(%v): %v, %d paths; want ErrMalformed", leaves, err, len(paths))
		}
		if _, err := merkleRoot(leaves); !errors.Is(err, ErrMalformed) {
			t.Fatalf("merkleRoot(%v): %v; want ErrMalformed", leaves, err)
		}
	}
}
