package auth

import (
	"context"
	"slices"
)

// Role is a staff role.
type Role string

// The roles, from most to least powerful.
const (
	Admin      Role = "admin"
	Supervisor Role = "supervisor"
	Clerk      Role = "clerk"
	Cashier    Role = "cashier"
	Guard      Role = "guard"
)

// Roles lists every role.
var Roles = []Role{Admin, Supervisor, Clerk, Cashier, Guard}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return slices.Contains(Roles, r) }

// Actor is who is doing something: a staff member through a session, an
// integration through an API token, or the system itself (demo seeding,
// scheduled jobs, the command line).
type Actor struct {
	Kind string // "staff", "token" or "system"
	ID   int64
	Name string
	Role Role
	// CSRF is the session's anti-forgery token (empty for tokens).
	CSRF string
}

// System is the actor for work nobody at a screen asked for.
var System = Actor{Kind: "system", Name: "system", Role: Admin}

type actorKey struct{}
type requestIDKey struct{}

// WithActor returns ctx carrying a.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor in ctx, or System if there is none.
func ActorFrom(ctx context.Context) Actor {
	if a, ok := ctx.Value(actorKey{}).(Actor); ok {
		return a
	}
	return System
}

// WithRequestID returns ctx carrying the HTTP request id, which audit rows
// record so a log line and an audit row can be matched.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

func requestID(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey{}).(string)
	return s
}
