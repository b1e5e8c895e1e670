package demoapp

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

const (
	maxClientMessage = 4 << 10
	maxChatRunes     = 500
	sendQueue        = 64
	writeTimeout     = 5 * time.Second
	pingTimeout      = 10 * time.Second
	chatRate         = rate.Limit(5) // messages per second, per connection
	chatBurst        = 10
)

// clientMessage is what a client may send: a chat line, in the clear
// ({"type":"chat","text":"..."}) or end-to-end encrypted ({"type":"sealed",
// "data":"<base64url>"}: one SFrame ciphertext the app relays as it came and
// cannot read, docs/e2ee.md section 5.5). Who sent it is never read from the
// message; it is the connection's identity.
type clientMessage struct {
	Type string `json:"type"`
	Text string `json:"text"`
	Data string `json:"data"`
}

// maxSealed is the longest ciphertext relayed, in base64url characters: 2 KiB
// of SFrame (web/src/demoapp/chat.ts MaxChatFrame).
const maxSealed = (2048*4 + 2) / 3

var (
	errNotJSON     = errors.New("message is not a JSON object")
	errUnknownType = errors.New(`only {"type":"chat","text":"..."} and {"type":"sealed","data":"..."} messages are understood`)
	errEmptyChat   = errors.New("empty message")
	errLongChat    = errors.New("message is longer than 500 characters")
	errBadSealed   = errors.New("sealed message: data must be 1 to 2048 bytes of unpadded base64url")
)

// parseChat reads a client message and returns it cleaned: a chat line's
// text, or a sealed message's data (checked to be base64url of a size an
// SFrame chat message can have, never decoded further).
func parseChat(data []byte) (clientMessage, error) {
	var msg clientMessage
	if err := json.Unmarshal(data, &msg); err != nil {
		return clientMessage{}, errNotJSON
	}
	switch msg.Type {
	case "chat":
		if utf8.RuneCountInString(msg.Text) > maxChatRunes {
			return clientMessage{}, errLongChat
		}
		text := sanitize(msg.Text)
		if text == "" {
			return clientMessage{}, errEmptyChat
		}
		return clientMessage{Type: "chat", Text: text}, nil
	case "sealed":
		if len(msg.Data) == 0 || len(msg.Data) > maxSealed || len(msg.Data)%4 == 1 {
			return clientMessage{}, errBadSealed
		}
		for _, c := range []byte(msg.Data) {
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return clientMessage{}, errBadSealed
			}
		}
		return clientMessage{Type: "sealed", Data: msg.Data}, nil
	}
	return clientMessage{}, errUnknownType
}

func (a *App) handleSocket(w http.ResponseWriter, r *http.Request) {
	room := r.PathValue("name")
	if !validRoom(room) {
		http.Error(w, "no such room", http.StatusNotFound)
		return
	}
	id, err := a.identify(r.Context(), r.Header, room)
	if err != nil {
		a.log.Info("demoapp: websocket refused", zap.String("room", room), zap.Error(err))
		http.Error(w, err.Error(), statusFor(err))
		return
	}
	if !a.enter() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer a.active.Done()
	// Accept refuses pages from other origins (cross-site WebSocket
	// hijacking would otherwise ride on the user's gateway session).
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: a.origins})
	if err != nil {
		a.log.Info("demoapp: websocket handshake refused", zap.String("room", room), zap.Error(err))
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(maxClientMessage)

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	m := &member{
		presence: presence{Name: id.Display(), Email: id.Email, Role: id.Role, Verified: id.Verified},
		send:     make(chan []byte, sendQueue),
		kick:     cancel,
	}
	m.bye = func() { _ = c.Close(websocket.StatusGoingAway, "server shutting down") }
	a.roster.join(room, m)
	if a.isClosing() { // Close took its snapshot of the roster before this join
		go m.bye()
	}
	a.log.Info("demoapp: joined", zap.String("room", room), zap.String("member", m.ID), zap.String("role", m.Role))

	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		a.writeLoop(ctx, c, m)
	}()
	err = a.readLoop(ctx, c, room, m)
	a.roster.leave(room, m)
	cancel()
	<-writerDone
	a.log.Info("demoapp: left", zap.String("room", room), zap.String("member", m.ID),
		zap.Int("close_status", int(websocket.CloseStatus(err))))
}

func (a *App) readLoop(ctx context.Context, c *websocket.Conn, room string, m *member) error {
	limit := rate.NewLimiter(chatRate, chatBurst)
	for {
		typ, data, err := c.Read(ctx)
		if err != nil {
			return err
		}
		if typ != websocket.MessageText {
			_ = c.Close(websocket.StatusUnsupportedData, "text messages only")
			return errUnknownType
		}
		msg, err := parseChat(data)
		switch {
		case err != nil:
		case m.Role == RoleViewer:
			err = errors.New("viewers cannot chat in this room")
		case !limit.Allow():
			err = errors.New("too many messages; slow down")
		}
		if err != nil {
			deliver(m, mustJSON(event{Type: "error", Text: err.Error()}))
			continue
		}
		from := m.presence
		a.roster.broadcast(room, event{Type: msg.Type, Member: &from, Text: msg.Text, Data: msg.Data, At: a.now().UTC().Format(time.RFC3339)})
	}
}

// writeLoop sends queued events and pings, so that a peer that vanished
// without closing leaves the roster within pingEvery+pingTimeout.
func (a *App) writeLoop(ctx context.Context, c *websocket.Conn, m *member) {
	ping := time.NewTicker(a.pingEvery)
	defer ping.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case msg := <-m.send:
			wctx, cancel := context.WithTimeout(ctx, writeTimeout)
			err = c.Write(wctx, websocket.MessageText, msg)
			cancel()
		case <-ping.C:
			pctx, cancel := context.WithTimeout(ctx, pingTimeout)
			err = c.Ping(pctx)
			cancel()
		}
		if err != nil {
			m.kick()
			return
		}
	}
}
