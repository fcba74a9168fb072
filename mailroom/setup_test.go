package mailroom_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"onecard/auth"
	"onecard/devices"
	"onecard/devices/locker"
	"onecard/estate"
	"onecard/fault"
	firmwaresim "onecard/firmware-sim"
	lockersim "onecard/firmware-sim/locker"
	"onecard/mailroom"
	"onecard/store"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// clock is a settable clock, safe for the workers to read.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// room is a site with units, residents and a mailroom.
type room struct {
	db    *store.DB
	m     *mailroom.Service
	es    *estate.Service
	clock *clock
	clerk context.Context // a clerk's context
	kiosk context.Context // a kiosk's context
	// person ids: zhang lives in 1-1-101, li moved out of 1-1-102.
	zhang, li int64
}

// The first clock reading: 10:00 at the site (Asia/Shanghai).
var start = time.Date(2026, 11, 20, 2, 0, 0, 0, time.UTC)

func newRoom(t testing.TB, db *store.DB, o mailroom.Options) *room {
	t.Helper()
	sys := auth.WithActor(context.Background(), auth.Actor{Kind: "system", Name: "test", Role: auth.Admin})
	es, err := estate.Open(sys, db, "t1", "测试小区", "Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"1-1-101", "1-1-102", "2-1-201"} {
		if _, err := es.CreateUnit(sys, estate.UnitInput{Code: u, Area: 9000, HandoverDate: "2020-01-01"}); err != nil {
			t.Fatal(err)
		}
	}
	r := &room{db: db, es: es, clock: &clock{t: start}}
	occ, err := es.MoveIn(sys, "1-1-101", estate.MoveIn{Person: &estate.PersonInput{Name: "张三", Phone: "13800000001",
		IDType: "resident_id", IDLast4: "1234"}, Role: estate.Owner, MovedInOn: "2020-01-01"})
	if err != nil {
		t.Fatal(err)
	}
	r.zhang = occ.PersonID
	occ, err = es.MoveIn(sys, "1-1-102", estate.MoveIn{Person: &estate.PersonInput{Name: "李四", Phone: "13800000002",
		IDType: "resident_id", IDLast4: "5678"}, Role: estate.Owner, MovedInOn: "2020-01-01"})
	if err != nil {
		t.Fatal(err)
	}
	r.li = occ.PersonID
	if _, err := es.MoveOut(sys, occ.ID, "2026-10-01"); err != nil {
		t.Fatal(err)
	}
	o.Log = quiet
	m, err := mailroom.Open(sys, db, es.Site(), o)
	if err != nil {
		t.Fatal(err)
	}
	m.SetClock(r.clock.Now)
	r.m = m
	r.clerk = auth.WithActor(context.Background(), auth.Actor{Kind: "staff", ID: 7, Name: "clerk1", Role: auth.Clerk})
	r.kiosk = auth.WithActor(context.Background(), auth.Actor{Kind: "kiosk", ID: 3, Name: "kiosk:lobby-1"})
	return r
}

// parcel is a valid registration of an express parcel for 1-1-101 on a
// shelf.
func parcel(tracking string) mailroom.RegisterInput {
	return mailroom.RegisterInput{Type: mailroom.Express, Carrier: "顺丰", Tracking: tracking, Unit: "1-1-101", Recipient: "张三",
		Condition: mailroom.ConditionOK, Storage: mailroom.StorageShelf, Slot: "A-1"}
}

func (r *room) register(t *testing.T, in mailroom.RegisterInput) mailroom.Item {
	t.Helper()
	it, err := r.m.Register(r.clerk, in)
	if err != nil {
		t.Fatalf("register %+v: %v", in, err)
	}
	return it
}

// audits counts the audit rows of an action on an entity.
func (r *room) audits(t *testing.T, action string, entityID any) int {
	t.Helper()
	var n int
	if err := r.db.Get(context.Background(), &n, "SELECT COUNT(*) FROM audit_log WHERE action = ? AND entity_id = ?", action, fmt.Sprint(entityID)); err != nil {
		t.Fatal(err)
	}
	return n
}

func faultOf(err error) (*fault.Error, bool) {
	if e, ok := fault.As(err); ok {
		return e, true
	}
	return &fault.Error{}, false
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := fault.Code(err); got != code || err == nil {
		t.Fatalf("%s: got %v (code %q), want code %q", what, err, got, code)
	}
}

// recorder is a Notifier that keeps the messages; fail makes it refuse
// the next ones with that error.
type recorder struct {
	mu   sync.Mutex
	msgs []mailroom.Message
	fail []error
}

func (r *recorder) Notify(ctx context.Context, m mailroom.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.fail) > 0 {
		err := r.fail[0]
		r.fail = r.fail[1:]
		return err
	}
	r.msgs = append(r.msgs, m)
	return nil
}

func (r *recorder) messages() []mailroom.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]mailroom.Message(nil), r.msgs...)
}

// codeFor returns the pickup code last sent for item number.
func (r *recorder) codeFor(number string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.msgs) - 1; i >= 0; i-- {
		m := r.msgs[i]
		if m.Code != "" && len(m.Items) == 1 && m.Items[0].Number == number {
			return m.Code
		}
	}
	return ""
}

// bank is the simulated bank (16 doors a board, boards 0, 1, …) on a pty,
// and the real driver on the pty's slave through tarm/serial, as in
// production.
type bank struct {
	sim  *lockersim.Sim
	bank *locker.Bank
}

// newBank starts the simulator and the driver, which waits timeout for
// each answer (far more than the simulator needs, unless a board is to be
// silent).
func newBank(t *testing.T, doors int, timeout time.Duration) *bank {
	t.Helper()
	link := filepath.Join(t.TempDir(), "locker")
	p, err := firmwaresim.OpenPTY(link)
	if err != nil {
		t.Fatalf("no pty: %v", err) // the pty rig is the point of these tests: no skipping
	}
	sim := lockersim.New(lockersim.Options{Doors: doors, Baud: 19200})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- sim.Serve(ctx, p) }()
	port, err := devices.OpenSerial(devices.SerialConfig{Path: link, Baud: 19200})
	if err != nil {
		t.Fatal(err)
	}
	b, err := locker.New(port, sim.Doors(), &locker.Opts{Baud: 19200, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.Close()
		port.Close()
		cancel()
		if err := <-served; !errors.Is(err, context.Canceled) {
			t.Errorf("Serve: %v", err)
		}
		p.Close()
	})
	return &bank{sim: sim, bank: b}
}

func (b *bank) open(door int) bool   { return b.sim.State().Doors[door-1].Open }
func (b *bank) unlocks(door int) int { return b.sim.State().Doors[door-1].Unlocks }

// close shuts a door in the simulator, as the clerk or the resident does.
func (b *bank) close(t *testing.T, door int) {
	t.Helper()
	if err := b.sim.Close(door); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds, failing after 15 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runLocker runs the locker worker until the test ends.
func (r *room) runLocker(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.m.RunLocker(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("RunLocker: %v", err)
		}
	})
}

func (r *room) command(t *testing.T, id int64) mailroom.Command {
	t.Helper()
	c, err := r.m.Command(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (r *room) item(t *testing.T, id int64) mailroom.Item {
	t.Helper()
	it, err := r.m.Item(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return it
}

func (r *room) doors(t *testing.T, n int, size string) {
	t.Helper()
	var in []mailroom.DoorInput
	for i := 1; i <= n; i++ {
		in = append(in, mailroom.DoorInput{Number: i, Size: size})
	}
	if err := r.m.SetDoors(r.clerk, in); err != nil {
		t.Fatal(err)
	}
}

// lockerParcel registers a parcel for the locker: express parcels are
// signed for by default (SOP), so these tests sign only registered and
// remittance items.
func lockerParcel(tracking string) mailroom.RegisterInput {
	in := parcel(tracking)
	in.Storage, in.Slot = mailroom.StorageLocker, ""
	return in
}

// kioskParcels lets express parcels and parcels go through the locker.
func (r *room) kioskParcels(t *testing.T) {
	t.Helper()
	st, err := r.m.Settings(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st.SignatureTypes = []string{mailroom.Registered, mailroom.Remittance}
	if err := r.m.SaveSettings(r.clerk, st); err != nil {
		t.Fatal(err)
	}
}
