package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"onecard/devices/broker"
	"onecard/fault"
	"onecard/fleet/proto"
	"onecard/store"
)

// Bus is the MQTT connection the service uses: QoS 1 publishes that
// return once the broker has the message, and subscriptions whose handler
// must not block.
type Bus interface {
	Publish(ctx context.Context, topic string, payload []byte, retained bool) error
	// Send starts a QoS 1 publish (not retained) and returns a wait for the
	// broker's acknowledgement, so that several can be in flight.
	Send(topic string, payload []byte) (wait func(ctx context.Context) error)
	Subscribe(filter string, handler func(topic string, payload []byte)) error
}

// Options configure the service.
type Options struct {
	// ServerSecret is onecard's own broker password (embedded broker); a
	// fresh one per process is fine.
	ServerSecret string
	// MonitorSecret enables the read-only monitor user; empty disables it.
	MonitorSecret string
	// ResendLimit: a device further behind than this gets a snapshot.
	ResendLimit int
	// TimeZone is the site's, sent to devices with the schedules.
	TimeZone string
	// Schedules are the named weekly schedules entries may refer to.
	Schedules map[string][]proto.Segment
	// Holidays are the dates ("2026-10-01") on which schedules use their
	// holiday segments ("H") instead of the weekday's.
	Holidays []string
	// PassKeys are the site's gate-pass public keys (base64), sent to the
	// devices with the configuration for offline checks.
	PassKeys []string
	Log      *slog.Logger
}

// Service is the fleet of one site.
type Service struct {
	db           *store.DB
	siteID       int64
	topics       proto.Topics
	log          *slog.Logger
	now          func() time.Time
	serverSecret string
	serverHash   string
	monitorHash  string
	resendLimit  int
	kick         func(device string)
	config       proto.Config
	handlers     map[string]EventHandler // by event kind
	ackSlots     chan struct{}           // event acknowledgements in flight

	bus    Bus
	acks   *acks
	watch  watchers
	resync resyncs
	// catching marks devices with a catch-up in flight (one at a time).
	catchMu  sync.Mutex
	catching map[string]bool
	// snapped is the last snapshot sent to each device and zone, so a
	// sync that crossed it on the way is not answered with another.
	snapped map[string]snapSent
	// cache holds each zone's whitelist as snapshot chunks (snapcache.go).
	cache  snapCache
	warmed atomic.Bool
	wake   chan struct{} // the outbox has news
	work   chan message  // received messages, handled in order per device
	stats  Stats
}

// Stats count what the fleet rejected or did (for /metrics).
type Stats struct {
	Rejected   atomic.Int64 // payloads that failed to decode or made no sense
	Published  atomic.Int64 // outbox messages published
	Events     atomic.Int64 // events stored (new)
	Duplicates atomic.Int64 // events received again
	Dropped    atomic.Int64 // acknowledgements or events dropped on a full queue
	// Snapshots sent from memory and read from the database.
	SnapshotsCached atomic.Int64
	SnapshotsRead   atomic.Int64
}

// New returns the fleet service of a site.
func New(db *store.DB, siteID int64, siteCode string, o Options) (*Service, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.ResendLimit == 0 {
		o.ResendLimit = 1000
	}
	if o.TimeZone == "" {
		o.TimeZone = "Asia/Shanghai"
	}
	if o.Schedules == nil {
		o.Schedules = map[string][]proto.Segment{}
	}
	s := &Service{db: db, ackSlots: make(chan struct{}, 64), siteID: siteID, topics: proto.Topics{Site: siteCode}, log: o.Log,
		now: func() time.Time { return time.Now().UTC() }, serverSecret: o.ServerSecret, resendLimit: o.ResendLimit,
		wake: make(chan struct{}, 1), work: make(chan message, 16384), acks: newAcks(), catching: map[string]bool{}, snapped: map[string]snapSent{},
		config: proto.Config{V: proto.Version, TZ: o.TimeZone, Schedules: o.Schedules, Holidays: o.Holidays, PassKeys: o.PassKeys}}
	var err error
	if o.ServerSecret != "" {
		if s.serverHash, err = broker.HashSecret(o.ServerSecret); err != nil {
			return nil, err
		}
	}
	if o.MonitorSecret != "" {
		if s.monitorHash, err = broker.HashSecret(o.MonitorSecret); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Topics returns the site's topic names.
func (s *Service) Topics() proto.Topics { return s.topics }

// Stats returns the counters.
func (s *Service) Stats() *Stats { return &s.stats }

// OnDisable sets what to do when a device is disabled (drop its broker
// connection).
func (s *Service) OnDisable(kick func(device string)) { s.kick = kick }

// Change records a whitelist change of zone inside tx, the transaction of
// the card change that caused it, and queues its broadcast in the outbox.
// It returns the zone's new sequence.
func (s *Service) Change(ctx context.Context, tx *store.Tx, zone string, ops []proto.Op) (uint64, error) {
	zid, err := s.EnsureZone(ctx, tx, zone, "")
	if err != nil {
		return 0, err
	}
	// Taking the sequence with an UPDATE locks the zone's row, so two
	// changes of one zone commit in sequence order with no gap.
	if _, err := tx.Exec(ctx, "UPDATE zones SET seq = seq + 1 WHERE id = ?", zid); err != nil {
		return 0, fmt.Errorf("fleet: zone sequence: %w", err)
	}
	var seq uint64
	if err := tx.Get(ctx, &seq, "SELECT seq FROM zones WHERE id = ?", zid); err != nil {
		return 0, fmt.Errorf("fleet: zone sequence: %w", err)
	}
	msg := &proto.Change{V: proto.Version, Zone: zone, Seq: seq, Ops: ops}
	payload, err := proto.Encode(msg)
	if err != nil {
		return 0, fault.Invalid("ops", "whitelist_change_invalid")
	}
	opsJSON, _ := json.Marshal(ops)
	now := s.now()
	if _, err := tx.Exec(ctx, "INSERT INTO wl_changes (zone_id, seq, ops, created_at) VALUES (?, ?, ?, ?)", zid, seq, string(opsJSON), now); err != nil {
		return 0, fmt.Errorf("fleet: change log: %w", err)
	}
	for _, op := range ops {
		if op.Op == "del" {
			if _, err := tx.Exec(ctx, "DELETE FROM wl_entries WHERE zone_id = ? AND card = ?", zid, op.Card); err != nil {
				return 0, err
			}
			continue
		}
		e := op.Entry.AppendRow(nil)
		if _, err := tx.Exec(ctx, `INSERT INTO wl_entries (zone_id, card, entry, seq) VALUES (?, ?, ?, ?)
			ON CONFLICT (zone_id, card) DO UPDATE SET entry = excluded.entry, seq = excluded.seq`, zid, op.Card, string(e), seq); err != nil {
			return 0, fmt.Errorf("fleet: whitelist entry: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, "INSERT INTO outbox (topic, payload, retained, created_at) VALUES (?, ?, ?, ?)",
		s.topics.Zone(zone), string(payload), false, now); err != nil {
		return 0, fmt.Errorf("fleet: outbox: %w", err)
	}
	tx.AfterCommit(func() { s.cache.change(zid, int64(seq), ops) })
	return seq, nil
}

// Kick tells the publisher the outbox has news (call after commit).
func (s *Service) Kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run connects the service to the bus and serves until ctx ends: it
// publishes the outbox, and handles births, acknowledgements, sync
// requests and events.
func (s *Service) Run(ctx context.Context, bus Bus) error {
	s.bus = bus
	if err := s.upgradeEntries(ctx); err != nil {
		return err
	}
	cfg, err := proto.Encode(&s.config)
	if err != nil {
		return fmt.Errorf("fleet: site configuration: %w", err)
	}
	// Listening first: a device that sees the configuration may publish
	// at once, and the broker drops what nobody is subscribed to.
	for _, kind := range []string{proto.KindState, proto.KindAck, proto.KindSync, proto.KindEvt} {
		if err := bus.Subscribe(s.topics.Prefix()+"dev/+/"+kind, s.receive); err != nil {
			return fmt.Errorf("fleet: subscribe %s: %w", kind, err)
		}
	}
	if err := bus.Publish(ctx, s.topics.Config(), cfg, true); err != nil {
		return fmt.Errorf("fleet: publish site configuration: %w", err)
	}
	go s.handle(ctx)
	go s.sweep(ctx)
	go s.warmCache(ctx)
	go s.flushAcks(ctx, 100*time.Millisecond)
	return s.publishOutbox(ctx)
}

// upgradeEntries rewrites whitelist entries stored by an earlier version
// as JSON objects into their row form (proto.Entry.AppendRow).
func (s *Service) upgradeEntries(ctx context.Context) error {
	var old []struct {
		ZoneID int64  `db:"zone_id"`
		Card   string `db:"card"`
		Entry  string `db:"entry"`
	}
	if err := s.db.Select(ctx, &old, "SELECT zone_id, card, entry FROM wl_entries WHERE entry LIKE '{%'"); err != nil || len(old) == 0 {
		return err
	}
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		for _, o := range old {
			var e proto.Entry
			if err := json.Unmarshal([]byte(o.Entry), &e); err != nil {
				return fmt.Errorf("whitelist entry %d/%s: %w", o.ZoneID, o.Card, err)
			}
			if _, err := tx.Exec(ctx, "UPDATE wl_entries SET entry = ? WHERE zone_id = ? AND card = ?", string(e.AppendRow(nil)), o.ZoneID, o.Card); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("fleet: upgrade whitelist entries: %w", err)
	}
	s.log.Info("fleet: whitelist entries upgraded to rows", "entries", len(old))
	return nil
}

// sweepEvery is how often devices that are online but behind are sent
// what they miss. Each change is published once per zone; this is the
// "keep sending until acknowledged" half, for the rare message a device
// never got (a publish lost across a broker restart, say).
const sweepEvery = 5 * time.Second

func (s *Service) sweep(ctx context.Context) {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var rows []struct {
			Device string `db:"device"`
			zoneRow
		}
		err := s.db.Select(ctx, &rows, `SELECT d.code AS device, z.id, z.code, z.seq, dz.acked
			FROM device_zones dz JOIN devices d ON d.id = dz.device_id JOIN zones z ON z.id = dz.zone_id
			JOIN wl_changes c ON c.zone_id = z.id AND c.seq = z.seq
			WHERE d.site_id = ? AND d.online AND NOT d.disabled AND dz.acked < z.seq AND c.created_at < ?`,
			s.siteID, s.now().Add(-sweepEvery))
		if err != nil {
			s.log.Warn("fleet: sweep", "err", err)
			continue
		}
		for _, r := range rows {
			// The table can lag the acknowledgements held in memory.
			if info, err := s.deviceInfo(ctx, r.Device); err == nil {
				s.acks.mu.Lock()
				a := s.acks.acked[dzKey{info.id, r.ID}]
				s.acks.mu.Unlock()
				if a >= r.Seq {
					continue
				}
				r.Acked = max(r.Acked, a)
			}
			s.catchUpAsync(ctx, r.Device, r.zoneRow, r.Acked)
		}
	}
}

// message is a received publish, queued for the handler.
type message struct {
	device, kind string
	payload      []byte
}

// receive runs on the MQTT client's goroutine: it must not block.
func (s *Service) receive(topic string, payload []byte) {
	t, ok := s.topics.Parse(topic)
	if !ok || t.Device == "" {
		s.stats.Rejected.Add(1)
		return
	}
	m := message{device: t.Device, kind: t.Kind, payload: append([]byte(nil), payload...)}
	if t.Kind == proto.KindState || t.Kind == proto.KindSync {
		// A birth or a sync request is not repeated by the device: wait
		// for room (paho runs each message on its own goroutine, so this
		// holds up nothing else).
		s.work <- m
		return
	}
	select {
	case s.work <- m:
	default:
		// The queue is full: the device repeats these (its cumulative
		// acknowledgements, its unacknowledged events), so dropping is safe.
		s.stats.Dropped.Add(1)
	}
}

func (s *Service) handle(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-s.work:
			if m.kind != proto.KindEvt {
				s.dispatch(ctx, m)
				continue
			}
			// Events arrive from many devices at once: store whatever is
			// queued in one transaction.
			batch, others := []message{m}, []message(nil)
		drain:
			for len(batch) < maxEventBatch {
				select {
				case n := <-s.work:
					if n.kind == proto.KindEvt {
						batch = append(batch, n)
					} else {
						others = append(others, n)
					}
				default:
					break drain
				}
			}
			s.onEventBatch(ctx, batch)
			for _, o := range others {
				s.dispatch(ctx, o)
			}
		}
	}
}

// maxEventBatch caps the event messages stored in one transaction.
const maxEventBatch = 256

func (s *Service) dispatch(ctx context.Context, m message) {
	var err error
	switch m.kind {
	case proto.KindState:
		err = s.onState(ctx, m)
	case proto.KindAck:
		err = s.onAck(ctx, m)
	case proto.KindSync:
		err = s.onSync(ctx, m)
	case proto.KindEvt:
		s.onEventBatch(ctx, []message{m})
	}
	if err != nil {
		s.reject(m, err)
	}
}

func (s *Service) reject(m message, err error) {
	s.stats.Rejected.Add(1)
	s.log.Warn("fleet: message rejected", "device", m.device, "kind", m.kind, "err", err)
}
