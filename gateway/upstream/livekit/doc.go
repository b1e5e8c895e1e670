// Package livekit is the gateway's adapter for LiveKit servers: after the
// gateway admits a person to a room, it mints that person's LiveKit access
// token server-side and puts it on the proxied signalling request; it
// removes kicked participants through LiveKit's room service; and it
// verifies LiveKit's webhooks and turns participant_joined/left into
// events.
//
// It must never let a browser hold the API secret or pick its own grants:
// only the signalling endpoints of an admitted room are forwarded, any
// access_token a client sends is dropped, and a minted token names exactly
// one room with grants mapped from the policy's role. It never mints
// roomAdmin, roomCreate, roomList or roomRecord for a person (the token
// types cannot even carry them); the room service is called with a
// roomAdmin token for one room that never leaves the gateway.
//
// # Paths
//
// With rooms.path /lk/room/{room}, a LiveKit client connects to
// wss://gateway/lk/room/<room> with any placeholder token. The gateway
// forwards /lk/room/<room>/rtc, /rtc/v1, /rtc/validate and
// /rtc/v1/validate to the same paths at the LiveKit server, with
// "Authorization: Bearer <minted token>". Everything else under the
// upstream is refused.
//
// # Identities
//
// A participant's LiveKit identity is mg.<person>.<device>: person is a
// pseudonym of the OIDC issuer and subject, device one of the admission
// (so two devices of one person do not evict each other, while a
// reconnecting device replaces its stale connection). Both are HMACs keyed
// from the API secret, so LiveKit and other participants learn neither
// the subject nor anything to forge with.
package livekit
