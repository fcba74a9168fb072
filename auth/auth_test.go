package auth_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"onecard/auth"
	"onecard/fault"
	"onecard/store"
	"onecard/store/storetest"
)

func TestLoginLockoutAndSessions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := auth.New(db, auth.DefaultPolicy)
		now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
		s.SetClock(func() time.Time { return now })
		if _, err := s.CreateStaff(ctx, auth.NewStaff{Username: "Li.Na", Role: auth.Clerk, Password: "correct horse"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateStaff(ctx, auth.NewStaff{Username: "li.na", Role: auth.Clerk, Password: "correct horse"}); !errors.Is(err, fault.ErrConflict) {
			t.Fatalf("duplicate username: %v", err)
		}
		if _, err := s.CreateStaff(ctx, auth.NewStaff{Username: "x", Role: "janitor", Password: "correct horse"}); !errors.Is(err, fault.ErrInvalid) {
			t.Fatalf("bad role: %v", err)
		}
		if _, err := s.CreateStaff(ctx, auth.NewStaff{Username: "short", Role: auth.Clerk, Password: "123"}); fault.Code(err) != "password_too_short" {
			t.Fatalf("short password: %v", err)
		}

		sess, err := s.Login(ctx, "LI.NA ", "correct horse", "127.0.0.1", "test")
		if err != nil {
			t.Fatal(err)
		}
		a, err := s.SessionActor(ctx, sess.Token)
		if err != nil || a.Name != "li.na" || a.Role != auth.Clerk || a.CSRF == "" {
			t.Fatalf("session actor %+v, %v", a, err)
		}

		for i := 0; i < auth.DefaultPolicy.MaxFailures; i++ {
			_, err := s.Login(ctx, "li.na", "wrong password", "127.0.0.1", "test")
			if i < auth.DefaultPolicy.MaxFailures-1 && fault.Code(err) != "login_failed" {
				t.Fatalf("failure %d: %v", i, err)
			}
		}
		if _, err := s.Login(ctx, "li.na", "correct horse", "127.0.0.1", "test"); !errors.Is(err, fault.ErrLocked) {
			t.Fatalf("locked account logged in: %v", err)
		}
		// Unknown names lock the same way, so they cannot be told apart.
		for i := 0; i < auth.DefaultPolicy.MaxFailures; i++ {
			s.Login(ctx, "nobody", "x", "", "")
		}
		if _, err := s.Login(ctx, "nobody", "x", "", ""); !errors.Is(err, fault.ErrLocked) {
			t.Fatalf("unknown name not locked: %v", err)
		}
		now = now.Add(auth.DefaultPolicy.LockoutPeriod + time.Second)
		if _, err := s.Login(ctx, "li.na", "correct horse", "127.0.0.1", "test"); err != nil {
			t.Fatalf("after lockout: %v", err)
		}
		// Idle sessions end.
		now = now.Add(auth.DefaultPolicy.SessionIdle + time.Minute)
		if _, err := s.SessionActor(ctx, sess.Token); !errors.Is(err, fault.ErrAuth) {
			t.Fatalf("idle session still valid: %v", err)
		}
		rows, err := s.Audit(ctx, auth.AuditFilter{Action: "staff."})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, r := range rows {
			seen[r.Action] = true
		}
		for _, want := range []string{"staff.create", "staff.login", "staff.locked"} {
			if !seen[want] {
				t.Errorf("no %s audit row in %v", want, seen)
			}
		}
	})
}

func TestTokens(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := auth.New(db, auth.DefaultPolicy)
		st, err := s.CreateStaff(ctx, auth.NewStaff{Username: "root", Role: auth.Admin, Password: "correct horse"})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.CreateToken(ctx, "billing export", auth.Cashier); !errors.Is(err, fault.ErrForbidden) {
			t.Fatalf("system actor made a token: %v", err)
		}
		actx := auth.WithActor(ctx, auth.Actor{Kind: "staff", ID: st.ID, Name: st.Username, Role: st.Role})
		tok, value, err := s.CreateToken(actx, "billing export", auth.Cashier)
		if err != nil {
			t.Fatal(err)
		}
		a, err := s.TokenActor(ctx, value)
		if err != nil || a.Role != auth.Cashier || a.Kind != "token" {
			t.Fatalf("token actor %+v %v", a, err)
		}
		if _, err := s.TokenActor(ctx, value+"x"); !errors.Is(err, fault.ErrAuth) {
			t.Fatalf("altered token accepted: %v", err)
		}
		if err := s.RevokeToken(actx, tok.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TokenActor(ctx, value); !errors.Is(err, fault.ErrAuth) {
			t.Fatalf("revoked token accepted: %v", err)
		}
		rows, err := s.Audit(ctx, auth.AuditFilter{Entity: "api_token"})
		if err != nil || len(rows) != 2 || rows[0].Action != "token.revoke" || rows[0].ActorName != "root" {
			t.Fatalf("token audit rows %+v %v", rows, err)
		}
	})
}

func TestPasswordHash(t *testing.T) {
	h, err := auth.HashPassword("秘密 password")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := auth.CheckPassword(h, "秘密 password"); !ok || err != nil {
		t.Fatalf("right password refused: %v", err)
	}
	if ok, _ := auth.CheckPassword(h, "秘密 passworD"); ok {
		t.Fatal("wrong password accepted")
	}
	if _, err := auth.CheckPassword("$2a$10$bcrypt", "x"); err == nil {
		t.Fatal("foreign hash format accepted")
	}
}
