package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meetguard/meetguard/crypto/e2ee"
	"github.com/meetguard/meetguard/crypto/e2ee/e2eehttp"
	"github.com/meetguard/meetguard/gateway/e2eeapi"
)

// clusterMember is one person in the cluster's e2ee room: admitted through
// the balancer, then running the headless e2ee client (the one behind
// `meetguard e2ee join`) against one node only.
type clusterMember struct {
	name, token, ticket, participant string
	node                             *clusterNode
	client                           *e2ee.Client
	done                             chan error
}

// joinThrough admits user to room through the balancer (any node).
func (c *meetguardCluster) joinThrough(t *testing.T, user, room string) (token, ticket, participant string) {
	t.Helper()
	token = c.token(t, user)
	req, _ := http.NewRequest(http.MethodPost, c.public+"/.meetguard/api/v1/rooms/"+room+"/join", strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status        string `json:"status"`
		Ticket        string `json:"ticket"`
		ParticipantID string `json:"participant_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.Ticket == "" {
		t.Fatalf("%s joins %s: %d %+v %v", user, room, resp.StatusCode, body, err)
	}
	return token, body.Ticket, body.ParticipantID
}

// nodeTransport is the e2ee HTTP transport of one member talking to one
// node directly (the Host header is the public one, as nginx sends it).
func (c *meetguardCluster) nodeTransport(t *testing.T, nd *clusterNode, room, token, ticket string) *e2eehttp.Transport {
	t.Helper()
	host := strings.TrimPrefix(c.public, "http://")
	tr, err := e2eehttp.NewTransport(e2eehttp.Options{Gateway: "http://" + nd.addr, Room: room, Authorize: func(r *http.Request) error {
		r.Host = host
		r.Header.Set("Authorization", "Bearer "+token)
		r.Header.Set(e2eeapi.TicketHeader, ticket)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// clusterSettled is the common state of clients that all hold the same
// epoch secret over a roster of want members, or why they do not yet.
func clusterSettled(clients []*e2ee.Client, want int) (e2ee.Status, error) {
	var first e2ee.Status
	for i, cl := range clients {
		st := cl.Status()
		switch {
		case st.State != e2ee.StateMember || len(st.Members) != want:
			return st, fmt.Errorf("client %d: %v with %d members", i, st.State, len(st.Members))
		case st.SecurityCode == "":
			return st, fmt.Errorf("client %d has no epoch secret for epoch %d (%v)", i, st.Epoch, st.Err)
		case i == 0:
			first = st
		case st.Roster != first.Roster || st.SecurityCode != first.SecurityCode:
			return st, fmt.Errorf("client %d at epoch %d.%d, client 0 at %d.%d", i, st.Epoch, st.Generation, first.Epoch, first.Generation)
		}
	}
	return first, nil
}

// e2eeKickAcrossNodes: Alice (host) follows the e2ee room through gw-1,
// Bob through gw-2, u000 through gw-3; each client talks to its node only.
// Alice kicks u000 with a request to gw-3. Alice and Bob, on the other two
// nodes, must reach a new epoch without u000, and u000 must get nothing of
// it: no node serves it the new epoch's sealed keys, and its client opens
// no frame sent after the kick. The time from the kick to both holding the
// new keys is logged (the issue asks for 2 s; a figure, not an assertion).
func (c *meetguardCluster) e2eeKickAcrossNodes(t *testing.T) {
	const room = "e2ee"
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	members := []*clusterMember{{name: "alice@example.com", node: c.nodes[0]}, {name: "bob@example.com", node: c.nodes[1]},
		{name: "u000@example.com", node: c.nodes[2]}}
	for _, m := range members {
		m.token, m.ticket, m.participant = c.joinThrough(t, m.name, room)
	}
	// One authority key on every node (they share e2ee.key_file).
	var authority []byte
	for _, nd := range c.nodes {
		k, err := c.nodeTransport(t, nd, room, members[0].token, members[0].ticket).AuthorityKey(ctx)
		if err != nil {
			t.Fatalf("%s's authority key: %v", nd.id, err)
		}
		if authority != nil && !bytes.Equal(k, authority) {
			t.Fatalf("%s serves another e2ee authority key than gw-1", nd.id)
		}
		authority = k
	}
	for _, m := range members {
		cl, err := e2ee.NewClient(ctx, e2ee.ClientOptions{Transport: c.nodeTransport(t, m.node, room, m.token, m.ticket),
			AuthorityKey: authority, Room: room})
		if err != nil {
			t.Fatal(err)
		}
		m.client, m.done = cl, make(chan error, 1)
		go func() { m.done <- cl.Run(ctx, nil) }()
	}
	t.Cleanup(func() {
		cancel()
		for _, m := range members {
			<-m.done
		}
	})
	alice, bob, kicked := members[0], members[1], members[2]
	all := []*e2ee.Client{alice.client, bob.client, kicked.client}
	var before e2ee.Status
	for {
		st, err := clusterSettled(all, 3)
		if err == nil {
			before = st
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the three members on three nodes never shared an epoch: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("three members on three nodes share epoch %d", before.Epoch)

	// The host kicks u000 through gw-3, the node that serves u000.
	req, _ := http.NewRequest(http.MethodPost, "http://"+c.nodes[2].addr+"/.meetguard/api/v1/rooms/"+room+"/participants/"+kicked.participant+"/remove",
		strings.NewReader("{}"))
	req.Host = strings.TrimPrefix(c.public, "http://")
	req.Header.Set("Authorization", "Bearer "+alice.token)
	req.Header.Set("Content-Type", "application/json")
	kickedAt := time.Now()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("the host's kick through gw-3: %d", resp.StatusCode)
	}
	remaining := []*e2ee.Client{alice.client, bob.client}
	var after e2ee.Status
	for {
		st, err := clusterSettled(remaining, 2)
		if err == nil && st.Epoch > before.Epoch {
			after = st
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the members on gw-1 and gw-2 never reached an epoch without the member kicked on gw-3: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("kick on gw-3 to the members on gw-1 and gw-2 holding epoch %d's keys: %v", after.Epoch, time.Since(kickedAt))
	if after.SecurityCode == before.SecurityCode {
		t.Fatal("the epoch after the kick has the old security code")
	}

	// The kicked member: no node serves it the new epoch's sealed keys, nor
	// the roster.
	for _, nd := range c.nodes {
		tr := c.nodeTransport(t, nd, room, kicked.token, kicked.ticket)
		if b, err := tr.SealedKeys(ctx, after.Epoch); !errors.Is(err, e2ee.ErrNotMember) {
			t.Errorf("%s serves the kicked member the sealed keys of epoch %d (%d bytes, %v)", nd.id, after.Epoch, len(b), err)
		}
		if _, err := tr.Roster(ctx, 0); !errors.Is(err, e2ee.ErrNotMember) {
			t.Errorf("%s serves the kicked member the roster: %v", nd.id, err)
		}
	}
	if st := kicked.client.Status(); st.SecurityCode == after.SecurityCode {
		t.Fatal("the kicked member's client holds the new epoch's secret")
	}
	// The members on gw-1 and gw-2 read each other's frames; the kicked
	// client opens none sent after the kick.
	for i, s := range remaining {
		frame, err := s.Encrypt(0, []byte("meta"), []byte("after the kick"))
		if err != nil {
			t.Fatal(err)
		}
		if got, _, err := remaining[1-i].Decrypt([]byte("meta"), frame); err != nil || string(got) != "after the kick" {
			t.Fatalf("remaining member %d cannot open member %d's frame: %v", 1-i, i, err)
		}
		if _, _, err := kicked.client.Decrypt([]byte("meta"), frame); err == nil {
			t.Fatal("the kicked member opened a frame sent after the kick")
		}
	}
}
