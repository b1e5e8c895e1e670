package bbb

import (
	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/identity"
)

func testParticipant(sub, room, role string) admission.Participant {
	return admission.Participant{
		Identity: identity.Identity{Issuer: "https://idp.test", Subject: sub, Name: "Grace Hopper"},
		Upstream: "bbb", Room: room, Role: role, ParticipantID: sub + "/" + room,
	}
}
