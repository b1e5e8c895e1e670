package sframe

import (
	"crypto/subtle"
	"fmt"
	"math/bits"
)

// AppendHeader appends the SFrame header of kid and ctr to dst (RFC 9605 section 4.3): values below 8 sit in
// the config byte, larger ones follow it in the fewest big-endian bytes, KID first.
func AppendHeader(dst []byte, kid, ctr uint64) []byte {
	var config byte
	if kid < 8 {
		config |= byte(kid) << 4
	} else {
		config |= 0x80 | byte(byteLen(kid)-1)<<4
	}
	if ctr < 8 {
		config |= byte(ctr)
	} else {
		config |= 0x08 | byte(byteLen(ctr)-1)
	}
	dst = append(dst, config)
	if kid >= 8 {
		dst = appendMinimal(dst, kid)
	}
	if ctr >= 8 {
		dst = appendMinimal(dst, ctr)
	}
	return dst
}

// ParseHeader reads the SFrame header at the start of b and returns its KID, CTR and length. Values must use the
// minimal encoding RFC 9605 requires; anything else is refused so that one header has one meaning.
func ParseHeader(b []byte) (kid, ctr uint64, n int, err error) {
	if len(b) == 0 {
		return 0, 0, 0, fmt.Errorf("%w: empty header", ErrMalformed)
	}
	config := b[0]
	n = 1
	read := func(field string, extended bool, v byte) (uint64, error) {
		if !extended {
			return uint64(v), nil
		}
		l := int(v) + 1
		if len(b) < n+l {
			return 0, fmt.Errorf("%w: %s: need %d bytes, have %d", ErrMalformed, field, l, len(b)-n)
		}
		var x uint64
		for _, c := range b[n : n+l] {
			x = x<<8 | uint64(c)
		}
		if x < 8 || byteLen(x) != l {
			return 0, fmt.Errorf("%w: %s: value %d not minimally encoded", ErrMalformed, field, x)
		}
		n += l
		return x, nil
	}
	if kid, err = read("kid", config&0x80 != 0, (config>>4)&0x07); err != nil {
		return 0, 0, 0, err
	}
	if ctr, err = read("ctr", config&0x08 != 0, config&0x07); err != nil {
		return 0, 0, 0, err
	}
	return kid, ctr, n, nil
}

func byteLen(x uint64) int { return (bits.Len64(x) + 7) / 8 }

func appendMinimal(dst []byte, x uint64) []byte {
	for i := byteLen(x) - 1; i >= 0; i-- {
		dst = append(dst, byte(x>>(8*i)))
	}
	return dst
}

func subtleEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
