package reader

import (
	"context"
	"maps"
	"slices"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"onecard/fleet/proto"
)

// Limits of what a reader keeps in memory.
const (
	maxAssemblies = 4                      // snapshots being assembled at once
	maxRanCmds    = 64                     // command ids remembered
	syncQuiet     = 500 * time.Millisecond // a repeated sync request for the same position waits this long
)

type inMsg struct {
	topic   string
	payload []byte
}

// receive is paho's handler for every message: it queues and returns.
func (r *Reader) receive(_ mqtt.Client, m mqtt.Message) {
	r.inMu.Lock()
	r.inbox = append(r.inbox, inMsg{m.Topic(), m.Payload()})
	r.inMu.Unlock()
	r.kick(r.inKick)
}

// handleLoop handles queued messages, one at a time, in arrival order,
// and sends the acknowledgements they call for (paced: see sendAcks).
func (r *Reader) handleLoop(ctx context.Context) {
	ackTimer := time.NewTimer(time.Hour)
	ackTimer.Stop()
	for {
		select {
		case <-ctx.Done():
			ackTimer.Stop()
			return
		case <-r.inKick:
		case <-ackTimer.C:
		}
		wait := r.sendAcks(time.Now()) // the timer's, if that is what woke it
		for {
			r.inMu.Lock()
			batch := r.inbox
			r.inbox = nil
			r.inMu.Unlock()
			if len(batch) == 0 {
				break
			}
			for _, m := range batch {
				r.handle(m)
			}
			wait = r.sendAcks(time.Now())
		}
		if wait > 0 {
			ackTimer.Reset(wait)
		}
	}
}

// ackEvery is the least time between two acknowledgements of a zone.
// Changes that come faster than they are acknowledged (the missed
// changes resent to a reader back online: a thousand of them, handled as
// they arrive, one or two at a time) are acknowledged a few times, not
// hundreds; a change that comes alone is acknowledged at once.
const ackEvery = 5 * time.Millisecond

// ackLater notes that zone is applied up to seq; sendAcks sends it. The
// acknowledgement is cumulative, so a burst of messages handled together
// (a reader back online gets the changes it missed and those broadcast
// meanwhile) is acknowledged once per zone, not once per message: a
// thousand readers acknowledging every message of a burst would flood
// the server for nothing.
func (r *Reader) ackLater(zone string, seq uint64) {
	if r.pendingAcks == nil {
		r.pendingAcks = map[string]uint64{}
	}
	if seq >= r.pendingAcks[zone] {
		r.pendingAcks[zone] = seq
	}
}

// sendAcks sends the acknowledgements noted, each zone's at most once per
// ackEvery, and says how long until the next one held back may go (0:
// none is). Handling goroutine only.
func (r *Reader) sendAcks(now time.Time) time.Duration {
	var next time.Duration
	for _, zone := range slices.Sorted(maps.Keys(r.pendingAcks)) {
		if wait := r.ackedAt[zone].Add(ackEvery).Sub(now); wait > 0 {
			if next == 0 || wait < next {
				next = wait
			}
			continue
		}
		r.publish(proto.KindAck, &proto.Ack{V: proto.Version, Zone: zone, Seq: r.pendingAcks[zone]})
		if r.ackedAt == nil {
			r.ackedAt = map[string]time.Time{}
		}
		r.ackedAt[zone] = now
		delete(r.pendingAcks, zone)
	}
	return next
}

// reject counts and logs a payload that is refused.
func (r *Reader) reject(topic string, err error) {
	r.mu.Lock()
	r.malformed++
	r.mu.Unlock()
	r.log.Warn("payload rejected", "topic", topic, "err", err)
}

func (r *Reader) handle(m inMsg) {
	tp, ok := r.topics.Parse(m.topic)
	if !ok || (tp.Device != "" && tp.Device != r.opts.ID) {
		r.log.Debug("message on a foreign topic ignored", "topic", m.topic)
		return
	}
	switch tp.Kind {
	case "config":
		c, err := proto.Decode[proto.Config](m.payload)
		if err == nil {
			err = r.setConfig(&c)
		}
		if err != nil {
			r.reject(m.topic, err)
		}
	case proto.KindWL:
		c, err := proto.Decode[proto.Change](m.payload)
		if err == nil && tp.Zone != "" && c.Zone != tp.Zone {
			err = errTopicZone
		}
		if err != nil {
			r.reject(m.topic, err)
			return
		}
		r.change(c)
	case proto.KindSnap:
		h, rows, err := proto.SnapshotChunk(m.payload)
		if err != nil {
			r.reject(m.topic, err)
			return
		}
		r.snapshot(h, rows)
	case proto.KindEvtAck:
		a, err := proto.Decode[proto.EventAck](m.payload)
		if err != nil {
			r.reject(m.topic, err)
			return
		}
		r.eventAck(a.Seq)
	case proto.KindCmd:
		c, err := proto.Decode[proto.Command](m.payload)
		if err != nil {
			r.reject(m.topic, err)
			return
		}
		r.command(c)
	default:
		r.log.Debug("message ignored", "topic", m.topic)
	}
}

type topicError string

func (e topicError) Error() string { return string(e) }

const errTopicZone = topicError("reader: change for another zone than its topic's")

func (r *Reader) holds(zone string) bool { return slices.Contains(r.zones, zone) }

// change applies a whitelist change by the sequence rules of docs/mqtt.md.
func (r *Reader) change(c proto.Change) {
	if !r.holds(c.Zone) {
		r.log.Warn("change for a zone not held ignored", "zone", c.Zone, "seq", c.Seq)
		return
	}
	r.mu.Lock()
	applied := r.applied[c.Zone]
	switch {
	case c.Seq <= applied:
		r.mu.Unlock()
		r.log.Debug("change already applied: acknowledged again", "zone", c.Zone, "seq", c.Seq, "applied", applied)
		r.ackLater(c.Zone, applied)
	case c.Seq == applied+1:
		wl := r.wl[c.Zone]
		for _, op := range c.Ops {
			if op.Op == "put" {
				wl.put(op.Entry)
			} else {
				wl.del(op.Card)
			}
		}
		r.setAppliedLocked(c.Zone, c.Seq)
		delete(r.wlJSON, c.Zone)
		err := r.changedLocked()
		r.mu.Unlock()
		if err != nil {
			return // not durable: not acknowledged; the resend will be acknowledged
		}
		r.log.Debug("change applied", "zone", c.Zone, "seq", c.Seq, "ops", len(c.Ops))
		r.ackLater(c.Zone, c.Seq)
	default:
		now := time.Now()
		m, seen := r.lastSync[c.Zone]
		quiet := seen && m.applied == applied && now.Sub(m.at) < syncQuiet
		if !quiet {
			r.lastSync[c.Zone] = syncMark{applied, now}
		}
		r.mu.Unlock()
		r.log.Info("gap in changes: sync requested", "zone", c.Zone, "seq", c.Seq, "applied", applied, "repeat", quiet)
		if !quiet {
			r.publish(proto.KindSync, &proto.Sync{V: proto.Version, Zones: map[string]uint64{c.Zone: applied}})
		}
	}
}

// assembly collects the chunks of one snapshot.
type assembly struct {
	zone    string
	seq     uint64
	chunks  int
	got     map[int]bool
	wl      *builder // the entries of the chunks got so far
	touched time.Time
}

// snapshot keeps a chunk (its header and its rows, read straight into
// the assembly's records); with the last one, it replaces the zone's
// whitelist at once.
func (r *Reader) snapshot(s proto.SnapshotHeader, rows string) {
	if !r.holds(s.Zone) {
		r.log.Warn("snapshot for a zone not held ignored", "zone", s.Zone, "snapshot", s.Snapshot)
		return
	}
	r.snapsMu.Lock()
	a := r.snaps[s.Snapshot]
	if a != nil && (a.zone != s.Zone || a.seq != s.Seq || a.chunks != s.Chunks) {
		delete(r.snaps, s.Snapshot)
		r.snapsMu.Unlock()
		r.reject(r.topics.Device(r.opts.ID, proto.KindSnap), topicError("reader: snapshot "+s.Snapshot+": chunks disagree on zone, seq or count"))
		return
	}
	if a == nil {
		if len(r.snaps) >= maxAssemblies { // forget the least recently fed
			var oldest string
			for id, x := range r.snaps {
				if oldest == "" || x.touched.Before(r.snaps[oldest].touched) {
					oldest = id
				}
			}
			delete(r.snaps, oldest)
		}
		a = &assembly{zone: s.Zone, seq: s.Seq, chunks: s.Chunks, got: map[int]bool{},
			wl: newBuilder(min(s.Chunks, 1000) * s.N)}
		r.snaps[s.Snapshot] = a
	}
	if !a.got[s.Chunk] {
		if err := a.wl.addRows(rows, s.N); err != nil {
			r.snapsMu.Unlock()
			r.reject(r.topics.Device(r.opts.ID, proto.KindSnap), err)
			return
		}
		a.got[s.Chunk] = true
	}
	a.touched = time.Now()
	if len(a.got) < a.chunks {
		r.snapsMu.Unlock()
		return
	}
	delete(r.snaps, s.Snapshot)
	for id, x := range r.snaps { // older snapshots of the zone are moot
		if x.zone == a.zone && x.seq <= a.seq {
			delete(r.snaps, id)
		}
	}
	r.snapsMu.Unlock()

	r.mu.Lock()
	applied := r.applied[a.zone]
	if a.seq < applied {
		r.mu.Unlock()
		r.log.Warn("snapshot older than the changes applied: ignored", "zone", a.zone, "snapshot_seq", a.seq, "applied", applied)
		r.ackLater(a.zone, applied)
		return
	}
	wl := a.wl.done()
	r.wl[a.zone] = wl
	r.setAppliedLocked(a.zone, a.seq)
	delete(r.wlJSON, a.zone)
	err := r.changedLocked()
	r.mu.Unlock()
	if err != nil {
		return
	}
	r.log.Info("snapshot applied", "zone", a.zone, "seq", a.seq, "entries", wl.len())
	if a.seq == 0 {
		return // a zone that never changed: there is no sequence 0 to acknowledge
	}
	r.ackLater(a.zone, a.seq)
}

// eventAck drops the events the server holds.
func (r *Reader) eventAck(seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq > r.evtSeq {
		r.log.Warn("acknowledgement of events never sent", "seq", seq, "last", r.evtSeq)
	}
	i := 0
	for i < len(r.events) && r.events[i].Seq <= seq {
		i++
	}
	if i == 0 {
		return
	}
	r.events = slices.Delete(r.events, 0, i)
	if len(r.events) == 0 {
		r.events = nil
	}
	r.sentUpTo = max(r.sentUpTo, min(seq, r.evtSeq))
	r.changedLocked()
}

// command runs a command unless it expired or already ran.
func (r *Reader) command(c proto.Command) {
	r.mu.Lock()
	if slices.Contains(r.ranCmds, c.ID) {
		r.mu.Unlock()
		r.log.Info("command already run: ignored", "id", c.ID, "cmd", c.Cmd)
		return
	}
	now, ok := r.nowLocked()
	switch {
	case c.Cmd == "open" && !ok:
		r.mu.Unlock()
		r.log.Warn("open refused: clock unset", "id", c.ID)
		return
	case now.UnixMilli() > c.Expires:
		r.mu.Unlock()
		r.log.Info("command expired: ignored", "id", c.ID, "cmd", c.Cmd, "expires", c.Expires)
		return
	}
	r.ranCmds = append(r.ranCmds, c.ID)
	if len(r.ranCmds) > maxRanCmds {
		r.ranCmds = slices.Delete(r.ranCmds, 0, len(r.ranCmds)-maxRanCmds)
	}
	var zones map[string]uint64
	switch c.Cmd {
	case "open":
		r.relayOpens++
	case "resync":
		zones = map[string]uint64{}
		for _, z := range r.zones {
			zones[z] = 0
		}
	case "reboot":
		if r.cur != nil {
			r.reboot = true
		}
	case "verdict":
		r.verdictLocked(*c.Verdict) // shown on the screen; never opens the relay
	}
	r.changedLocked() // the id is remembered before anything else happens
	r.mu.Unlock()
	r.log.Info("command run", "id", c.ID, "cmd", c.Cmd)
	switch c.Cmd {
	case "resync":
		r.publish(proto.KindSync, &proto.Sync{V: proto.Version, Zones: zones})
	case "reboot":
		r.kick(r.wake)
	}
}

// setConfig keeps the site configuration.
func (r *Reader) setConfig(c *proto.Config) error {
	s, err := compile(c)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.config != nil && sameConfig(r.config, c) {
		return nil // the retained copy, again
	}
	r.config, r.sched, r.passKeys = c, s, r.keyring(c)
	r.changedLocked()
	r.log.Info("configuration", "tz", c.TZ, "schedules", len(c.Schedules), "pass_keys", r.passKeys.Len())
	return nil
}
