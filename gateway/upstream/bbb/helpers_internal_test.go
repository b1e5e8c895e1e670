package bbb

import (
	"github.com/meetguard/meetguard/gateway"
	"github.com/meetguard/meetguard/gateway/identity"
)

func testParticipant(sub, room, role string) gateway.Participant {
	return gateway.Participant{
		Identity: identity.Identity{Issuer: "https://idp.test", Subject: sub, Name: "Grace Hopper"},
		Upstream: "bbb", Room: room, Role: role, ParticipantID: sub + "/" + room,
	}
}
