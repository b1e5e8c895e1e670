package e2ee

import (
	"fmt"

	"github.com/meetguard/meetguard/crypto/sframe"
)

// live returns the epoch keys for (epoch, generation) if they are current or within their grace period; the
// caller holds c.mu.
func (c *Client) live(epoch uint64, gen uint8) *epochState {
	now := c.clock.Now()
	if e := c.current; e != nil && e.keys.epoch == epoch && e.keys.generation == gen {
		return e
	}
	for _, e := range c.old {
		if e.keys.epoch == epoch && e.keys.generation == gen && now.Before(e.expires) {
			return e
		}
	}
	return nil
}

// EncryptionKey returns this sender's current SFrame key for one of its streams (one per media track). Media
// code should prefer Encrypt, which also owns the counter.
func (c *Client) EncryptionKey(stream uint8) (*sframe.Key, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return nil, err
	}
	if c.current == nil {
		return nil, ErrNoKey
	}
	i, _ := c.current.roster.Index(c.cred.Hash())
	return c.current.keys.sframeKey(i, stream)
}

// DecryptionKey returns the live SFrame key for kid (read from a frame's SFrame header) and its sender.
func (c *Client) DecryptionKey(kid uint64) (*sframe.Key, Hash, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return nil, Hash{}, err
	}
	epoch, gen, index, stream := SplitKID(kid)
	e := c.live(epoch, gen)
	if e == nil || index >= len(e.roster.Members) {
		return nil, Hash{}, fmt.Errorf("%w: KID %#x", ErrNoKey, kid)
	}
	key, err := e.keys.sframeKey(index, stream)
	if err != nil {
		return nil, Hash{}, err
	}
	return key, e.roster.Members[index], nil
}

// Encrypt protects one frame of this sender's stream with the current key and the stream's next counter:
// every (sender, stream) has its own KID, and no counter is used twice under one KID.
func (c *Client) Encrypt(stream uint8, metadata, frame []byte) ([]byte, error) {
	c.mu.Lock()
	if err := c.usable(); err != nil {
		c.mu.Unlock()
		return nil, err
	}
	e := c.current
	if e == nil {
		c.mu.Unlock()
		return nil, ErrNoKey
	}
	ctx := e.send[stream]
	if ctx == nil {
		i, _ := e.roster.Index(c.cred.Hash())
		key, err := e.keys.sframeKey(i, stream)
		if err != nil {
			c.mu.Unlock()
			return nil, err
		}
		ctx = sframe.NewSendContext(key)
		e.send[stream] = ctx
	}
	c.mu.Unlock()
	return ctx.Protect(metadata, frame)
}

// Decrypt unprotects one frame and names its sender. It refuses frames under keys past their grace period and
// replayed frames (sframe.ErrReplay).
func (c *Client) Decrypt(metadata, frame []byte) ([]byte, Hash, error) {
	kid, _, _, err := sframe.ParseHeader(frame)
	if err != nil {
		return nil, Hash{}, err
	}
	c.mu.Lock()
	if err := c.usable(); err != nil {
		c.mu.Unlock()
		return nil, Hash{}, err
	}
	epoch, gen, index, stream := SplitKID(kid)
	e := c.live(epoch, gen)
	if e == nil || index >= len(e.roster.Members) {
		c.mu.Unlock()
		return nil, Hash{}, fmt.Errorf("%w: KID %#x", ErrNoKey, kid)
	}
	rc := e.recv[kid]
	if rc == nil {
		key, err := e.keys.sframeKey(index, stream)
		if err != nil {
			c.mu.Unlock()
			return nil, Hash{}, err
		}
		rc = sframe.NewReceiveContext(key)
		e.recv[kid] = rc
	}
	sender := e.roster.Members[index]
	c.mu.Unlock()
	pt, err := rc.Unprotect(metadata, frame)
	return pt, sender, err
}
