package fleet

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// StoredEvent is an access event as stored, for consoles.
type StoredEvent struct {
	Device     string    `db:"device" json:"device"`
	Seq        int64     `db:"seq" json:"seq"`
	At         time.Time `db:"at" json:"at"`
	ReceivedAt time.Time `db:"received_at" json:"received_at"`
	ClockOK    bool      `db:"clock_ok" json:"clock_ok"`
	Kind       string    `db:"kind" json:"kind"`
	Card       string    `db:"card" json:"card,omitempty"`
	Zone       string    `db:"zone" json:"zone,omitempty"`
	Reason     string    `db:"reason" json:"reason,omitempty"`
	Data       string    `db:"data" json:"data,omitempty"`
	// Of a pass_release, given to its handler (not stored with the event).
	Mover   string `db:"-" json:"-"`
	Plate   string `db:"-" json:"-"`
	Offline bool   `db:"-" json:"-"`
	// Replay: the event was stored before (the device sent it again); a
	// handler must not record it twice.
	Replay bool `db:"-" json:"-"`
}

// EventFilter narrows events; zero fields match all.
type EventFilter struct {
	Device string
	Kind   string
	Card   string
	Limit  int
}

// Match reports whether e passes the filter.
func (f EventFilter) Match(e StoredEvent) bool {
	return (f.Device == "" || e.Device == f.Device) && (f.Kind == "" || e.Kind == f.Kind) &&
		(f.Card == "" || strings.EqualFold(e.Card, f.Card))
}

// RecentEvents lists the latest stored events, newest first.
func (s *Service) RecentEvents(ctx context.Context, f EventFilter) ([]StoredEvent, error) {
	q := `SELECT d.code AS device, e.seq, e.at, e.received_at, e.clock_ok, e.kind, e.card, e.zone, e.reason, e.data
		FROM access_events e JOIN devices d ON d.id = e.device_id WHERE d.site_id = ?`
	args := []any{s.siteID}
	if f.Device != "" {
		q += " AND d.code = ?"
		args = append(args, f.Device)
	}
	if f.Kind != "" {
		q += " AND e.kind = ?"
		args = append(args, f.Kind)
	}
	if f.Card != "" {
		q += " AND e.card = ?"
		args = append(args, strings.ToUpper(f.Card))
	}
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	q += " ORDER BY e.id DESC LIMIT " + strconv.Itoa(f.Limit)
	out := []StoredEvent{}
	if err := s.db.Select(ctx, &out, q, args...); err != nil {
		return nil, fmt.Errorf("fleet: recent events: %w", err)
	}
	return out, nil
}

// watchers fans stored events out to live consoles. A console that reads
// too slowly misses events (it can reload); the fleet never waits for it.
type watchers struct {
	mu   sync.Mutex
	subs map[chan StoredEvent]struct{}
}

// Watch returns a channel of events as they are stored, and a function to
// stop watching.
func (s *Service) Watch() (<-chan StoredEvent, func()) {
	ch := make(chan StoredEvent, 256)
	s.watch.mu.Lock()
	if s.watch.subs == nil {
		s.watch.subs = map[chan StoredEvent]struct{}{}
	}
	s.watch.subs[ch] = struct{}{}
	s.watch.mu.Unlock()
	return ch, func() {
		s.watch.mu.Lock()
		delete(s.watch.subs, ch)
		s.watch.mu.Unlock()
	}
}

func (s *Service) announce(evs []StoredEvent) {
	s.watch.mu.Lock()
	defer s.watch.mu.Unlock()
	for ch := range s.watch.subs {
		for _, e := range evs {
			select {
			case ch <- e:
			default:
			}
		}
	}
}
