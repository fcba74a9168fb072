package reader

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"onecard/fleet/proto"
	"onecard/passes/passcode"
)

// DefaultFirmware is the firmware a reader reports in its birth unless
// Options say otherwise.
const DefaultFirmware = "reader-sim 1.0"

// Options configure a Reader.
type Options struct {
	// Broker is the broker's URL: tcp://host:port, or tls://host:port.
	Broker string
	// Site is the site code of the topics (onecard/v1/<site>/…).
	Site string
	// ID is the device id, used as MQTT client id and username.
	ID string
	// Secret is the device's password.
	Secret string
	// Zone is the zone this reader guards: the whitelist it decides from.
	Zone string
	// Zones are the zones whose whitelists it holds; Zone is added if
	// missing. Default: Zone alone.
	Zones []string
	// StateFile is where the reader keeps its state between runs; "" keeps
	// it in memory only.
	StateFile string
	// SaveEvery, when positive, writes StateFile at most once per period
	// instead of after every change (see the package documentation).
	SaveEvery time.Duration
	// Fsync syncs the state file and its directory at every write.
	Fsync bool
	// Firmware is reported in the birth; default DefaultFirmware.
	Firmware string
	// Clock is the time while the reader's clock is set; default time.Now.
	Clock func() time.Time
	// Log receives the reader's log; nil discards it.
	Log *slog.Logger
	// VerdictWait is how long ScanPass waits for the server's verdict
	// before a gate terminal decides itself; default DefaultVerdictWait.
	VerdictWait time.Duration
}

// Decision is the outcome of a card presented to a reader.
type Decision struct {
	Granted bool
	Reason  string // why it was denied: one of proto.DenyReasons
}

// Status is a summary of a reader, for consoles and tests.
type Status struct {
	ID         string
	Online     bool              // connected and born
	Session    uint64            // the session number of the last connection attempt
	ClockOK    bool              // false after a power loss until SetClock(true)
	Applied    map[string]uint64 // per zone, the last change sequence applied
	Pending    int               // events not yet acknowledged by the server
	EventSeq   uint64            // the last event sequence used
	RelayOpens int               // times the door relay opened
	Malformed  int               // payloads rejected
	PassKeys   int               // gate-pass public keys in its configuration
	Released   int               // passes it released itself, remembered
}

// Reader is one simulated reader. Its methods are safe for concurrent use.
type Reader struct {
	opts   Options
	topics proto.Topics
	zones  []string
	log    *slog.Logger
	clock  func() time.Time

	running atomic.Bool
	wake    chan struct{} // interrupts Run's waits: offline, power loss, reboot
	evtKick chan struct{} // events to send, or a new connection to replay on

	inMu    sync.Mutex
	inbox   []inMsg
	inKick  chan struct{}
	snapsMu sync.Mutex // only the handling goroutine uses snaps; this keeps PowerLoss's reset safe
	snaps   map[string]*assembly
	// pendingAcks are the acknowledgements to send once the messages at
	// hand are handled (handling goroutine only).
	pendingAcks map[string]uint64
	ackedAt     map[string]time.Time // when each zone was last acknowledged

	mu sync.Mutex
	// persisted
	session  uint64
	applied  map[string]uint64
	waiters  []appliedWait // WaitApplied calls waiting
	wl       map[string]*whitelist
	evtSeq   uint64
	events   []proto.Event // unacknowledged, in sequence, contiguous
	config   *proto.Config
	ranCmds  []string       // ids of recently run commands, oldest first
	lastTime int64          // Unix ms when the state was last saved with the clock set
	released []releasedPass // passes it released itself, oldest first
	// volatile
	wlJSON      map[string][]byte // each zone's whitelist as saved, until it changes
	dirty       bool
	sched       *schedules
	clockOK     bool
	guessBase   time.Time // with the clock unset: the time believed at boot
	bootAt      time.Time // … and when (by Options.Clock) the power came back
	cur         *link     // the live connection, nil when down
	online      bool      // cur is born
	gen         uint64    // counts connections, so a late send result is not misread
	sentUpTo    uint64    // events up to here were published on cur
	offline     bool
	powerLoss   bool // drop cur as a power loss (Run sees it)
	reboot      bool // close cur cleanly and reconnect
	relayOpens  int
	malformed   int
	lastSync    map[string]syncMark
	saveFailure int
	passKeys    *passcode.Keyring             // of config
	scanWait    map[uint64]chan proto.Verdict // by pass_scan seq: ScanPass waiting for its verdict
	verdicts    []verdictMemo                 // the last verdicts, for ReleasePass; oldest first
}

type syncMark struct {
	applied uint64
	at      time.Time
}

// New makes a reader, loading its StateFile if there is one.
func New(o Options) (*Reader, error) {
	if !proto.ValidID(o.ID) {
		return nil, fmt.Errorf("reader: invalid id %q", o.ID)
	}
	if !proto.ValidID(o.Site) {
		return nil, fmt.Errorf("reader %s: invalid site %q", o.ID, o.Site)
	}
	if !proto.ValidID(o.Zone) {
		return nil, fmt.Errorf("reader %s: invalid zone %q", o.ID, o.Zone)
	}
	zones := []string{o.Zone}
	for _, z := range o.Zones {
		if !proto.ValidID(z) {
			return nil, fmt.Errorf("reader %s: invalid zone %q", o.ID, z)
		}
		if !slices.Contains(zones, z) {
			zones = append(zones, z)
		}
	}
	if len(zones) > 64 {
		return nil, fmt.Errorf("reader %s: %d zones, at most 64", o.ID, len(zones))
	}
	if o.Firmware == "" {
		o.Firmware = DefaultFirmware
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.VerdictWait <= 0 {
		o.VerdictWait = DefaultVerdictWait
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r := &Reader{
		opts:     o,
		topics:   proto.Topics{Site: o.Site},
		zones:    zones,
		log:      log.With("reader", o.ID),
		clock:    o.Clock,
		wake:     make(chan struct{}, 1),
		evtKick:  make(chan struct{}, 1),
		inKick:   make(chan struct{}, 1),
		snaps:    map[string]*assembly{},
		applied:  map[string]uint64{},
		wl:       map[string]*whitelist{},
		wlJSON:   map[string][]byte{},
		clockOK:  true,
		lastSync: map[string]syncMark{},
		passKeys: &passcode.Keyring{},
		scanWait: map[uint64]chan proto.Verdict{},
	}
	for _, z := range zones {
		r.applied[z] = 0
		r.wl[z] = newWhitelist()
	}
	if o.StateFile != "" {
		if err := r.load(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// ID is the reader's device id.
func (r *Reader) ID() string { return r.opts.ID }

// Tap presents a card: the reader decides from its whitelist (docs/mqtt.md,
// "The decision"), pulses the relay on a grant, and records the event,
// persistently, to be published when connected.
func (r *Reader) Tap(card string) Decision {
	card = strings.ToUpper(strings.NewReplacer(":", "", " ", "", "-", "").Replace(card))
	r.mu.Lock()
	now, ok := r.nowLocked()
	d := r.decideLocked(card, now)
	r.evtSeq++
	ev := proto.Event{Seq: r.evtSeq, At: now.UnixMilli(), Clock: clockWord(ok), Kind: "granted", Zone: r.opts.Zone}
	if proto.ValidCard(card) {
		ev.Card = card
	}
	if !d.Granted {
		ev.Kind, ev.Reason = "denied", d.Reason
	} else {
		r.relayOpens++
	}
	r.events = append(r.events, ev)
	r.changedLocked()
	r.mu.Unlock()
	r.kick(r.evtKick)
	r.log.Debug("card presented", "card", card, "granted", d.Granted, "reason", d.Reason, "seq", ev.Seq)
	return d
}

// decideLocked is the decision: the guarded zone's whitelist first; a card
// found only on another zone the reader holds goes through the same checks
// and is then denied for its zone.
func (r *Reader) decideLocked(card string, now time.Time) Decision {
	e, found := r.wl[r.opts.Zone].get(card)
	otherZone := false
	if !found {
		for _, z := range r.zones[1:] {
			if e, found = r.wl[z].get(card); found {
				otherZone = true
				break
			}
		}
	}
	sec := now.Unix()
	switch {
	case !found:
		return Decision{Reason: "unknown"}
	case e.Blocked:
		return Decision{Reason: "blocked"}
	case sec < e.From:
		return Decision{Reason: "not_yet_valid"}
	case sec >= e.Until:
		return Decision{Reason: "expired"}
	case !r.sched.allows(e.Sched, now):
		return Decision{Reason: "schedule"}
	case otherZone:
		return Decision{Reason: "zone"}
	}
	return Decision{Granted: true}
}

// nowLocked is the reader's idea of the time, and whether its clock is set.
func (r *Reader) nowLocked() (time.Time, bool) {
	t := r.clock()
	if r.clockOK {
		return t, true
	}
	return r.guessBase.Add(t.Sub(r.bootAt)), false
}

func clockWord(ok bool) string {
	if ok {
		return "ok"
	}
	return "unset"
}

// Applied returns each held zone's applied change sequence.
func (r *Reader) Applied() map[string]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.applied)
}

// appliedWait is a WaitApplied call: done is closed once zone is applied
// up to seq.
type appliedWait struct {
	zone string
	seq  uint64
	done chan struct{}
}

// setAppliedLocked records that zone is applied up to seq, and wakes the
// WaitApplied calls that this satisfies (only those: a reader catching
// up on a thousand changes wakes a waiter once, not a thousand times).
func (r *Reader) setAppliedLocked(zone string, seq uint64) {
	r.applied[zone] = seq
	r.waiters = slices.DeleteFunc(r.waiters, func(w appliedWait) bool {
		if w.zone == zone && w.seq <= seq {
			close(w.done)
			return true
		}
		return false
	})
}

// WaitApplied waits until the reader has applied zone up to seq or later,
// or ctx ends. Tests and load tools learn the moment a change lands,
// without polling.
func (r *Reader) WaitApplied(ctx context.Context, zone string, seq uint64) error {
	r.mu.Lock()
	if r.applied[zone] >= seq {
		r.mu.Unlock()
		return nil
	}
	w := appliedWait{zone, seq, make(chan struct{})}
	r.waiters = append(r.waiters, w)
	r.mu.Unlock()
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		r.mu.Lock()
		r.waiters = slices.DeleteFunc(r.waiters, func(x appliedWait) bool { return x.done == w.done })
		r.mu.Unlock()
		select {
		case <-w.done: // applied meanwhile
			return nil
		default:
			return ctx.Err()
		}
	}
}

// Entry returns a card's entry on a zone's whitelist.
func (r *Reader) Entry(zone, card string) (proto.Entry, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if w := r.wl[zone]; w != nil {
		return w.get(card)
	}
	return proto.Entry{}, false
}

// Whitelist returns the number of entries on a zone's whitelist.
func (r *Reader) Whitelist(zone string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if w := r.wl[zone]; w != nil {
		return w.len()
	}
	return 0
}

// Pending is the number of events not yet acknowledged by the server.
func (r *Reader) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// Online reports whether the reader is connected and has published its
// birth.
func (r *Reader) Online() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.online
}

// RelayOpens counts the times the door relay opened (grants and open
// commands).
func (r *Reader) RelayOpens() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.relayOpens
}

// Malformed counts the payloads rejected (failed proto.Decode, or
// inconsistent with their topic).
func (r *Reader) Malformed() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.malformed
}

// Status summarises the reader.
func (r *Reader) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Status{
		ID:         r.opts.ID,
		Online:     r.online,
		Session:    r.session,
		ClockOK:    r.clockOK,
		Applied:    maps.Clone(r.applied),
		Pending:    len(r.events),
		EventSeq:   r.evtSeq,
		RelayOpens: r.relayOpens,
		Malformed:  r.malformed,
		PassKeys:   r.passKeys.Len(),
		Released:   len(r.released),
	}
}

// PowerLoss cuts the power for an instant: the connection drops without
// DISCONNECT (the broker publishes the will), the clock is lost (see
// SetClock), chunks of snapshots in progress are forgotten; the persisted
// state is kept. A running Run reconnects after the reader has booted.
func (r *Reader) PowerLoss() {
	r.mu.Lock()
	if r.dirty {
		r.saveLocked() // the simulated flash write completes
	}
	r.setClockLocked(false)
	l := r.detachLocked()
	if l != nil {
		r.powerLoss = true
	}
	r.lastSync = map[string]syncMark{}
	r.verdicts = nil // the screen went dark: a release now counts as offline
	r.mu.Unlock()
	r.snapsMu.Lock()
	r.snaps = map[string]*assembly{}
	r.snapsMu.Unlock()
	if l != nil {
		l.drop()
	}
	r.kick(r.wake)
	r.log.Info("power loss")
}

// SetClock sets the clock (true: Options.Clock is the time again) or loses
// it (false: the time is a guess, and events and the birth say so). When
// the clock changes while online, the birth is published again.
func (r *Reader) SetClock(ok bool) {
	r.mu.Lock()
	changed := r.clockOK != ok
	r.setClockLocked(ok)
	var birth []byte
	if changed && r.online {
		birth = r.birthLocked(r.cur.session)
	}
	l := r.cur
	r.mu.Unlock()
	if birth != nil {
		l.publish(r.topics.Device(r.opts.ID, proto.KindState), true, birth)
	}
}

func (r *Reader) setClockLocked(ok bool) {
	if ok == r.clockOK {
		return
	}
	if !ok {
		r.guessBase = time.UnixMilli(r.lastTime)
		r.bootAt = r.clock()
	}
	r.clockOK = ok
}

// Offline takes the network down (true) or brings it back (false). While it
// is down the reader keeps deciding and queues its events.
func (r *Reader) Offline(down bool) {
	r.mu.Lock()
	r.offline = down
	var l *link
	if down {
		l = r.detachLocked()
	}
	r.mu.Unlock()
	if l != nil {
		l.drop()
	}
	r.kick(r.wake)
	r.log.Info("network", "down", down)
}

// kick signals a channel of capacity 1 without blocking.
func (r *Reader) kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// ackedLocked is the highest event sequence the server acknowledged.
func (r *Reader) ackedLocked() uint64 {
	if len(r.events) > 0 {
		return r.events[0].Seq - 1
	}
	return r.evtSeq
}

// unsentLocked copies up to n queued events after sentUpTo.
func (r *Reader) unsentLocked(n int) []proto.Event {
	i := sort.Search(len(r.events), func(i int) bool { return r.events[i].Seq > r.sentUpTo })
	j := min(len(r.events), i+n)
	return slices.Clone(r.events[i:j])
}
