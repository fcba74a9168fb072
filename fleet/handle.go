package fleet

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"time"

	"onecard/fleet/proto"
	"onecard/store"
)

// deviceRow is what handlers need of a device.
type deviceRow struct {
	ID       int64 `db:"id"`
	Disabled bool  `db:"disabled"`
	Session  int64 `db:"session"`
	Acked    int64 `db:"events_acked"`
}

func (s *Service) deviceRow(ctx context.Context, q store.Q, code string) (deviceRow, error) {
	var d deviceRow
	err := q.Get(ctx, &d, "SELECT id, disabled, session, events_acked FROM devices WHERE site_id = ? AND code = ?", s.siteID, code)
	if store.IsNoRows(err) {
		return d, fmt.Errorf("unknown device %q", code)
	}
	return d, err
}

type zoneRow struct {
	ID    int64  `db:"id"`
	Code  string `db:"code"`
	Seq   int64  `db:"seq"`
	Acked int64  `db:"acked"`
}

func (s *Service) deviceZones(ctx context.Context, q store.Q, deviceID int64) ([]zoneRow, error) {
	var zs []zoneRow
	err := q.Select(ctx, &zs, `SELECT z.id, z.code, z.seq, dz.acked FROM device_zones dz JOIN zones z ON z.id = dz.zone_id
		WHERE dz.device_id = ? ORDER BY z.code`, deviceID)
	return zs, err
}

// onState handles a birth or a will. A will with an older session than
// the one known is a late will of an old connection: ignored. A birth is
// always believed, even with a lower session (a reader replaced or reset
// loses its counter; it must not be locked out of catch-up for that).
func (s *Service) onState(ctx context.Context, m message) error {
	st, err := proto.Decode[proto.State](m.payload)
	if err != nil {
		return err
	}
	d, err := s.deviceRow(ctx, s.db, m.device)
	if err != nil {
		return err
	}
	online := st.State == "online"
	born := online && !d.Disabled
	var zones []zoneRow
	if born {
		// What the device misses goes first, before anything is written (a
		// reader back after a long absence waits for it; a write can wait
		// for the database's lock); then its state and acknowledgements
		// are recorded. (A birth is always recorded: see above.)
		if zones, err = s.deviceZones(ctx, s.db, d.ID); err != nil {
			return err
		}
		for _, z := range zones {
			applied := int64(st.Applied[z.Code])
			if applied > z.Seq {
				// The device claims changes never made (another server's
				// data, a corrupted file): what it holds is unknown, so it
				// starts over from a snapshot.
				s.snapshotAsync(ctx, m.device, z.ID, z.Code)
				continue
			}
			s.catchUpAsync(ctx, m.device, z, applied)
		}
		// Let them start now: on a small machine the goroutines just
		// started otherwise wait until the writes below are done.
		runtime.Gosched()
	}
	// The state and, for a birth, the acknowledgements it carries, in one
	// transaction (one commit: on SQLite, one write of the log).
	stale := false
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE devices SET online = ?, session = ?, firmware = CASE WHEN ? THEN ? ELSE firmware END,
			clock_ok = CASE WHEN ? THEN ? ELSE clock_ok END, last_seen_at = ?, updated_at = ?
			WHERE id = ? AND (? OR session <= ?)`,
			born, st.Session, online, st.Firmware, online, st.Clock == "ok", s.now(), s.now(),
			d.ID, online, st.Session)
		if err != nil {
			return fmt.Errorf("record state: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			stale = true
			return nil
		}
		for _, z := range zones { // none unless born
			if _, err := tx.Exec(ctx, "UPDATE device_zones SET acked = ? WHERE device_id = ? AND zone_id = ?", appliedOf(st, z), d.ID, z.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if stale {
		s.log.Info("fleet: stale state ignored", "device", m.device, "session", st.Session, "known", d.Session, "state", st.State)
		return nil
	}
	for _, z := range zones {
		s.acks.record(dzKey{d.ID, z.ID}, appliedOf(st, z), true)
	}
	return nil
}

// appliedOf is what a birth says the device has applied of a zone; a
// claim beyond the zone's sequence counts as nothing (it gets a snapshot).
func appliedOf(st proto.State, z zoneRow) int64 {
	if applied := int64(st.Applied[z.Code]); applied <= z.Seq {
		return applied
	}
	return 0
}

// onAck records a device's cumulative acknowledgement of a zone, in
// memory first (see acks).
func (s *Service) onAck(ctx context.Context, m message) error {
	a, err := proto.Decode[proto.Ack](m.payload)
	if err != nil {
		return err
	}
	info, err := s.deviceInfo(ctx, m.device)
	if err != nil {
		return err
	}
	zid, ok := info.zones[a.Zone]
	if !ok {
		return fmt.Errorf("ack for zone %q, not the device's", a.Zone)
	}
	sent, err := s.zoneSeqAtLeast(ctx, zid, int64(a.Seq))
	if err != nil {
		return err
	}
	if !sent {
		return fmt.Errorf("ack of %s seq %d, never sent", a.Zone, a.Seq)
	}
	s.acks.record(dzKey{info.id, zid}, int64(a.Seq), false)
	s.resyncAcked(m.device, a.Zone, int64(a.Seq))
	return nil
}

// onSync answers a device that found a gap.
func (s *Service) onSync(ctx context.Context, m message) error {
	req, err := proto.Decode[proto.Sync](m.payload)
	if err != nil {
		return err
	}
	d, err := s.deviceRow(ctx, s.db, m.device)
	if err != nil {
		return err
	}
	zones, err := s.deviceZones(ctx, s.db, d.ID)
	if err != nil {
		return err
	}
	for _, z := range zones {
		from, ok := req.Zones[z.Code]
		if !ok {
			continue
		}
		if from == 0 {
			// A sync from 0 asks to start over (the resync command, a
			// device that lost its whitelist): resending changes onto what
			// it holds would repair nothing.
			s.snapshotAsync(ctx, m.device, z.ID, z.Code)
			continue
		}
		if s.justSnapped(m.device, z.Code, z.Seq) {
			// A device that missed changes while a snapshot was on its way
			// (a change published while it subscribed, say) asks for
			// what the snapshot brings anyway.
			s.log.Debug("fleet: sync answered by the snapshot just sent", "device", m.device, "zone", z.Code)
			continue
		}
		s.catchUpAsync(ctx, m.device, z, min(int64(from), z.Seq))
	}
	return nil
}

// snapSent is a snapshot sent to a device.
type snapSent struct {
	seq int64
	at  time.Time
}

// snapFresh is how long a snapshot sent answers a sync for the same
// sequence; the sweep covers a snapshot that got lost.
const snapFresh = 10 * time.Second

// justSnapped reports whether device was sent a snapshot of zone at seq or
// later within snapFresh.
func (s *Service) justSnapped(device, zone string, seq int64) bool {
	s.catchMu.Lock()
	defer s.catchMu.Unlock()
	sn, ok := s.snapped[device+"\x00"+zone]
	return ok && sn.seq >= seq && time.Since(sn.at) < snapFresh
}

// catchUpAsync runs catchUp off the message handler (resending a thousand
// changes waits for a thousand PUBACKs), at most one per device at a time:
// while one runs, another request for the device is dropped, and the
// sweep retries whatever is still missing afterwards.
func (s *Service) catchUpAsync(ctx context.Context, device string, z zoneRow, applied int64) {
	s.background(ctx, device, z.Code, func() error { return s.catchUp(ctx, device, z, applied) })
}

// snapshotAsync sends a snapshot off the message handler, like catchUpAsync.
func (s *Service) snapshotAsync(ctx context.Context, device string, zoneID int64, zone string) {
	s.background(ctx, device, zone, func() error { return s.sendSnapshot(ctx, device, zoneID, zone) })
}

// background runs one sending job per device and zone at a time.
func (s *Service) background(ctx context.Context, device, zone string, job func() error) {
	key := device + "\x00" + zone
	s.catchMu.Lock()
	if s.catching[key] {
		s.catchMu.Unlock()
		return
	}
	s.catching[key] = true
	s.catchMu.Unlock()
	go func() {
		defer func() {
			s.catchMu.Lock()
			delete(s.catching, key)
			s.catchMu.Unlock()
		}()
		if err := job(); err != nil && ctx.Err() == nil {
			s.log.Warn("fleet: sending to a device", "device", device, "zone", zone, "err", err)
		}
	}()
}

// catchUp brings a device from applied to the zone's current sequence:
// the missing changes, or a snapshot when it is too far behind.
func (s *Service) catchUp(ctx context.Context, device string, z zoneRow, applied int64) error {
	if applied >= z.Seq {
		return nil
	}
	if z.Seq-applied <= int64(s.resendLimit) {
		var rows []struct {
			Seq int64  `db:"seq"`
			Ops string `db:"ops"`
		}
		if err := s.db.Select(ctx, &rows, "SELECT seq, ops FROM wl_changes WHERE zone_id = ? AND seq > ? ORDER BY seq", z.ID, applied); err != nil {
			return err
		}
		if len(rows) > 0 && rows[0].Seq == applied+1 {
			// In order, several awaiting the broker at once: one after
			// the other, each waiting for its PUBACK, a reader 1,000
			// behind waited five times what the same messages take.
			topic := s.topics.Device(device, proto.KindWL)
			win := window{bus: s.bus}
			for _, r := range rows {
				var ops []proto.Op
				if err := json.Unmarshal([]byte(r.Ops), &ops); err != nil {
					return fmt.Errorf("change %s/%d: %w", z.Code, r.Seq, err)
				}
				b, err := proto.Encode(&proto.Change{V: proto.Version, Zone: z.Code, Seq: uint64(r.Seq), Ops: ops})
				if err != nil {
					return err
				}
				if err := win.send(ctx, topic, b, 0); err != nil {
					return err
				}
			}
			return win.flush(ctx)
		}
	}
	return s.sendSnapshot(ctx, device, z.ID, z.Code)
}

// nthIndex is the index of the k-th c in s (k >= 1), or len(s).
func nthIndex(s string, c byte, k int) int {
	i := -1
	for ; k > 0; k-- {
		j := strings.IndexByte(s[i+1:], c)
		if j < 0 {
			return len(s)
		}
		i += j + 1
	}
	return i
}

// pageChunks is how many snapshot chunks are read from the database at
// once.
const pageChunks = 10

// sendWindow is how many messages of one catch-up (snapshot chunks or
// resent changes) may await the broker's acknowledgement at once.
const sendWindow = 16

// window publishes messages in order with up to sendWindow of them
// awaiting the broker; arrived, if set, is called with each message's
// tag as the broker acknowledges it, oldest first.
type window struct {
	bus     Bus
	arrived func(tag int)
	waits   []func(context.Context) error
	tags    []int
}

func (w *window) send(ctx context.Context, topic string, b []byte, tag int) error {
	if len(w.waits) == sendWindow {
		if err := w.next(ctx); err != nil {
			return err
		}
	}
	w.waits, w.tags = append(w.waits, w.bus.Send(topic, b)), append(w.tags, tag)
	return nil
}

// next waits for the oldest message awaiting the broker.
func (w *window) next(ctx context.Context) error {
	if err := w.waits[0](ctx); err != nil {
		return err
	}
	if w.arrived != nil {
		w.arrived(w.tags[0])
	}
	w.waits, w.tags = w.waits[1:], w.tags[1:]
	return nil
}

// flush waits until the broker has every message.
func (w *window) flush(ctx context.Context) error {
	for len(w.waits) > 0 {
		if err := w.next(ctx); err != nil {
			return err
		}
	}
	return nil
}

// sendSnapshot sends a zone's whole whitelist, as of one sequence, in
// chunks.
func (s *Service) sendSnapshot(ctx context.Context, device string, zoneID int64, zone string) error {
	return s.sendSnapshotTracked(ctx, device, zoneID, zone, nil)
}

// sendSnapshotTracked is sendSnapshot, reporting progress as chunks reach
// the broker. The chunks come from the cache (snapcache.go) when it holds
// the zone at its current sequence; otherwise they are read page by page
// from one consistent view of the database and published as they are
// read, several in flight, so reading, publishing and the device's parsing
// overlap, and what was read fills the cache.
func (s *Service) sendSnapshotTracked(ctx context.Context, device string, zoneID int64, zone string, progress func(seq int64, entries, sent int)) error {
	var seq int64
	if err := s.db.Get(ctx, &seq, "SELECT seq FROM zones WHERE id = ?", zoneID); err != nil {
		return fmt.Errorf("snapshot %s: %w", zone, err)
	}
	if chunks, counts, ok := s.cache.get(zoneID, seq); ok {
		s.stats.SnapshotsCached.Add(1)
		total := 0
		for _, n := range counts {
			total += n
		}
		return s.publishSnapshot(ctx, device, zone, seq, total, len(chunks), progress, func(emit func(string, int) bool) error {
			for i := range chunks {
				if !emit(chunks[i], counts[i]) {
					break
				}
			}
			return nil
		})
	}
	s.stats.SnapshotsRead.Add(1)
	view, err := s.readView(ctx)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", zone, err)
	}
	defer view.close()
	var total int
	if err := view.get(ctx, &seq, "SELECT seq FROM zones WHERE id = ?", zoneID); err != nil {
		return fmt.Errorf("snapshot %s: %w", zone, err)
	}
	if err := view.get(ctx, &total, "SELECT COUNT(*) FROM wl_entries WHERE zone_id = ?", zoneID); err != nil {
		return fmt.Errorf("snapshot %s: %w", zone, err)
	}
	chunks := max((total+proto.MaxSnapshotEntries-1)/proto.MaxSnapshotEntries, 1)
	rows := &zoneRows{seq: seq}
	err = s.publishSnapshot(ctx, device, zone, seq, total, chunks, progress, readAhead(ctx, func(emit func(string, int) bool) error {
		return readChunks(ctx, view, zoneID, total, func(chunk string, n int) bool {
			rows.add(chunk, n)
			return emit(chunk, n)
		})
	}))
	if err == nil && rows.total == total {
		s.cache.put(zoneID, rows)
	}
	return err
}

// readChunks reads a zone's entries from view in pages of pageChunks
// chunks, each page joined by the database into one string of rows, and
// calls emit with each chunk until it returns false. The entries were
// validated when their change was recorded and are stored in their row
// form, so they go out as they are.
func readChunks(ctx context.Context, view view, zoneID int64, total int, emit func(rows string, n int) bool) error {
	if total == 0 {
		emit("", 0)
		return nil
	}
	after, read := "", 0
	for read < total {
		var page struct {
			Rows sql.NullString `db:"rows"`
			N    int            `db:"n"`
			Last sql.NullString `db:"last"`
		}
		err := view.get(ctx, &page, `SELECT string_agg(entry, CAST(? AS TEXT)) AS rows, COUNT(*) AS n, MAX(card) AS last
			FROM (SELECT card, entry FROM wl_entries WHERE zone_id = ? AND card > ? ORDER BY card LIMIT ?) p`,
			"\n", zoneID, after, pageChunks*proto.MaxSnapshotEntries)
		if err == nil && (page.N == 0 || read+page.N > total) {
			err = fmt.Errorf("%d entries counted, %d read", total, read+page.N)
		}
		if err != nil {
			return err
		}
		read += page.N
		after = page.Last.String
		rows := page.Rows.String
		for n := page.N; n > 0; n -= proto.MaxSnapshotEntries {
			k, end := min(n, proto.MaxSnapshotEntries), len(rows)
			if n > proto.MaxSnapshotEntries {
				end = nthIndex(rows, '\n', k)
			}
			if !emit(rows[:end], k) {
				return nil
			}
			rows = rows[min(end+1, len(rows)):]
		}
	}
	return nil
}

// publishSnapshot publishes the chunks that produce emits as one snapshot
// of zone at seq, with up to sendWindow chunks awaiting the broker's
// acknowledgement. produce runs on the caller's goroutine: chunks held in
// memory go out without a hand-over (each costs a wake-up on a small
// machine); chunks read from the database come through readAhead.
func (s *Service) publishSnapshot(ctx context.Context, device, zone string, seq int64, total, chunks int,
	progress func(seq int64, entries, sent int), produce func(emit func(rows string, n int) bool) error) error {
	id := make([]byte, 6)
	rand.Read(id)
	snap := "s" + hex.EncodeToString(id)
	sent := 0
	win := window{bus: s.bus, arrived: func(n int) {
		sent += n
		if progress != nil {
			progress(seq, total, sent)
		}
	}}
	topic := s.topics.Device(device, proto.KindSnap)
	c := 0
	var failed error
	err := produce(func(rows string, n int) bool {
		b, err := proto.AppendSnapshot(nil, proto.SnapshotHeader{Zone: zone, Seq: uint64(seq), Snapshot: snap, Chunk: c, Chunks: chunks, N: n}, rows)
		if err == nil && len(b) > proto.MaxPayload {
			err = fmt.Errorf("snapshot %s: chunk of %d bytes exceeds the payload limit", zone, len(b))
		}
		if err == nil {
			err = win.send(ctx, topic, b, n)
		}
		c++
		failed = err
		return err == nil
	})
	switch {
	case failed != nil:
		return failed
	case err != nil:
		return fmt.Errorf("snapshot %s: %w", zone, err)
	case c != chunks:
		return fmt.Errorf("snapshot %s: %d chunks announced, %d made", zone, chunks, c)
	}
	if err := win.flush(ctx); err != nil {
		return err
	}
	s.catchMu.Lock()
	s.snapped[device+"\x00"+zone] = snapSent{seq, time.Now()}
	s.catchMu.Unlock()
	s.log.Info("fleet: snapshot sent", "device", device, "zone", zone, "seq", seq, "entries", total, "chunks", chunks)
	return nil
}

// readAhead runs produce on a goroutine of its own, up to sendWindow
// chunks ahead of the emit it is given, so that reading the database and
// publishing overlap.
func readAhead(ctx context.Context, produce func(emit func(rows string, n int) bool) error) func(emit func(rows string, n int) bool) error {
	return func(emit func(rows string, n int) bool) error {
		type chunk struct {
			rows string
			n    int
		}
		out := make(chan chunk, sendWindow)
		done := make(chan error, 1)
		rctx, stop := context.WithCancel(ctx)
		defer stop()
		go func() {
			defer close(out)
			done <- produce(func(rows string, n int) bool {
				select {
				case out <- chunk{rows, n}:
					return true
				case <-rctx.Done():
					return false
				}
			})
		}()
		for ch := range out {
			if !emit(ch.rows, ch.n) {
				stop()
				for range out { // let the reader finish
				}
				return nil
			}
		}
		if err := <-done; err != nil {
			return err
		}
		return ctx.Err()
	}
}

// view is a consistent, read-only view of the database that does not hold
// up writers: a repeatable-read transaction on PostgreSQL; on SQLite a
// deferred transaction, which under WAL reads one snapshot and takes no
// lock (the store's transactions begin IMMEDIATE, taking the write lock,
// so it is begun by hand on a connection of its own).
type view struct {
	get   func(ctx context.Context, dest any, query string, args ...any) error
	close func()
}

func (s *Service) readView(ctx context.Context) (view, error) {
	if s.db.Dialect == store.Postgres {
		x, err := s.db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
		if err != nil {
			return view{}, err
		}
		tx := &store.Tx{Tx: x, Dialect: s.db.Dialect}
		return view{get: tx.Get, close: func() { x.Rollback() }}, nil
	}
	conn, err := s.db.Connx(ctx)
	if err != nil {
		return view{}, err
	}
	if _, err := conn.ExecContext(ctx, "BEGIN DEFERRED"); err != nil {
		conn.Close()
		return view{}, err
	}
	return view{
		get: func(ctx context.Context, dest any, query string, args ...any) error {
			return conn.GetContext(ctx, dest, query, args...)
		},
		close: func() {
			if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
				// Never hand a connection still in a transaction back to
				// the pool.
				conn.Raw(func(any) error { return driver.ErrBadConn })
			}
			conn.Close()
		},
	}, nil
}

// onEventBatch stores the events of several messages, each exactly once,
// in one transaction, then acknowledges to each device the highest
// sequence up to which the server holds all its events.
func (s *Service) onEventBatch(ctx context.Context, batch []message) {
	type decoded struct {
		m    message
		info *devInfo
		evs  proto.Events
	}
	var good []decoded
	for _, m := range batch {
		evs, err := proto.Decode[proto.Events](m.payload)
		if err != nil {
			s.reject(m, err)
			continue
		}
		info, err := s.deviceInfo(ctx, m.device)
		if err != nil {
			s.reject(m, err)
			continue
		}
		good = append(good, decoded{m, info, evs})
	}
	if len(good) == 0 {
		return
	}
	acked := map[string]int64{}
	var stored, dup int64
	var fresh []StoredEvent
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		stored, dup, fresh = 0, 0, nil
		now := s.now()
		touched := map[string]int64{} // device code → id
		for _, d := range good {
			for _, e := range d.evs.Events {
				res, err := tx.Exec(ctx, `INSERT INTO access_events (device_id, seq, at, received_at, clock_ok, kind, card, zone, reason, data)
					VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device_id, seq) DO NOTHING`,
					d.info.id, e.Seq, time.UnixMilli(e.At).UTC(), now, e.Clock == "ok", e.Kind, e.Card, e.Zone, e.Reason, e.Data)
				if err != nil {
					return fmt.Errorf("store event %d of %s: %w", e.Seq, d.m.device, err)
				}
				if n, _ := res.RowsAffected(); n == 1 {
					stored++
					se := StoredEvent{Device: d.m.device, Seq: int64(e.Seq), At: time.UnixMilli(e.At).UTC(), ReceivedAt: now,
						ClockOK: e.Clock == "ok", Kind: e.Kind, Card: e.Card, Zone: e.Zone, Reason: e.Reason, Data: e.Data,
						Mover: e.Mover, Plate: e.Plate, Offline: e.Offline}
					if h := s.handlers[e.Kind]; h != nil {
						if err := h(ctx, tx, se); err != nil {
							return fmt.Errorf("handle %s event %d of %s: %w", e.Kind, e.Seq, d.m.device, err)
						}
					}
					fresh = append(fresh, se)
				} else {
					dup++
					if h := s.handlers[e.Kind]; h != nil {
						// A replay (the device missed the answer): the handler
						// may answer again, recording nothing.
						se := StoredEvent{Device: d.m.device, Seq: int64(e.Seq), At: time.UnixMilli(e.At).UTC(), ReceivedAt: now,
							ClockOK: e.Clock == "ok", Kind: e.Kind, Card: e.Card, Zone: e.Zone, Reason: e.Reason, Data: e.Data,
							Mover: e.Mover, Plate: e.Plate, Offline: e.Offline, Replay: true}
						if err := h(ctx, tx, se); err != nil {
							return fmt.Errorf("handle replayed %s event %d of %s: %w", e.Kind, e.Seq, d.m.device, err)
						}
					}
				}
			}
			touched[d.m.device] = d.info.id
		}
		for code, id := range touched {
			var prev int64
			if err := tx.Get(ctx, &prev, "SELECT events_acked FROM devices WHERE id = ?", id); err != nil {
				return err
			}
			a := prev
			for {
				var seqs []int64
				if err := tx.Select(ctx, &seqs, "SELECT seq FROM access_events WHERE device_id = ? AND seq > ? ORDER BY seq LIMIT 500", id, a); err != nil {
					return err
				}
				n := 0
				for _, q := range seqs {
					if q != a+1 {
						break
					}
					a, n = q, n+1
				}
				if n < 500 {
					break
				}
			}
			if a > prev {
				if _, err := tx.Exec(ctx, "UPDATE devices SET events_acked = ?, last_seen_at = ? WHERE id = ?", a, now, id); err != nil {
					return err
				}
			}
			acked[code] = a
		}
		return nil
	})
	if err != nil {
		for _, d := range good {
			s.reject(d.m, err)
		}
		return
	}
	s.stats.Events.Add(stored)
	s.stats.Duplicates.Add(dup)
	s.announce(fresh)
	// Acknowledge every device at once rather than one PUBACK after
	// another, and without waiting for the broker before the next batch
	// (at most ackSlots in flight); an acknowledgement that is lost or
	// overtaken is harmless (they are cumulative, and the device replays
	// what stays pending).
	for code, a := range acked {
		if a == 0 {
			continue
		}
		s.ackSlots <- struct{}{}
		go func(code string, a int64) {
			defer func() { <-s.ackSlots }()
			b, err := proto.Encode(&proto.EventAck{V: proto.Version, Seq: uint64(a)})
			if err == nil {
				err = s.bus.Publish(ctx, s.topics.Device(code, proto.KindEvtAck), b, false)
			}
			if err != nil {
				s.log.Warn("fleet: event acknowledgement", "device", code, "err", err)
			}
		}(code, a)
	}
}

// publishOutbox publishes queued messages in order, marking each sent once
// the broker has it. A crash between publish and mark sends it again,
// which devices absorb (a change they hold is only acknowledged again).
func (s *Service) publishOutbox(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		for {
			var rows []struct {
				ID       int64  `db:"id"`
				Topic    string `db:"topic"`
				Payload  string `db:"payload"`
				Retained bool   `db:"retained"`
			}
			if err := s.db.Select(ctx, &rows, "SELECT id, topic, payload, retained FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT 200"); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				s.log.Warn("fleet: read outbox", "err", err)
				break
			}
			if len(rows) == 0 {
				break
			}
			sent := 0
			for _, r := range rows {
				if err := s.bus.Publish(ctx, r.Topic, []byte(r.Payload), r.Retained); err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					s.log.Warn("fleet: publish", "topic", r.Topic, "err", err)
					break
				}
				if _, err := s.db.Exec(ctx, "UPDATE outbox SET sent_at = ? WHERE id = ?", s.now(), r.ID); err != nil {
					return fmt.Errorf("fleet: mark sent: %w", err)
				}
				s.stats.Published.Add(1)
				sent++
			}
			if sent < len(rows) {
				break
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.wake:
		case <-tick.C:
		}
	}
}
