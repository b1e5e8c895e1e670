package devidp

import "slices"

// User is a demo identity that the login page offers and that tokens describe.
type User struct {
	Subject       string // stable "sub"; required and unique
	Email         string // required and unique; also accepted as the user in POST /dev/token
	EmailVerified bool
	Name          string
	Groups        []string
	ACR           string   // authentication context class, e.g. "aal2"
	AMR           []string // authentication methods, e.g. ["pwd","mfa"]
}

// MFA reports whether the user's authentication methods include a second factor.
func (u User) MFA() bool {
	return slices.Contains(u.AMR, "mfa") || slices.Contains(u.AMR, "otp") || slices.Contains(u.AMR, "hwk")
}

// DefaultUsers returns the demo users offered when Options.Users is empty: a
// meeting host who signed in with MFA, a colleague with a password only, and
// an outside guest in no group. A fresh slice is returned on every call so
// callers may modify it.
func DefaultUsers() []User {
	return []User{
		{
			Subject:       "alice",
			Email:         "alice@example.com",
			EmailVerified: true,
			Name:          "Alice Host",
			Groups:        []string{"meeting-hosts", "staff"},
			ACR:           "aal2",
			AMR:           []string{"pwd", "mfa"},
		},
		{
			Subject:       "bob",
			Email:         "bob@example.com",
			EmailVerified: true,
			Name:          "Bob Colleague",
			Groups:        []string{"staff"},
			ACR:           "aal1",
			AMR:           []string{"pwd"},
		},
		{
			Subject:       "eve",
			Email:         "eve@guest.test",
			EmailVerified: true,
			Name:          "Eve Guest",
			Groups:        []string{},
			ACR:           "aal1",
			AMR:           []string{"pwd"},
		},
	}
}
