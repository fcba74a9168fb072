// Package proto is the reader fleet's MQTT protocol (docs/mqtt.md): topic
// names, who may use which topic, and the payloads with their validation.
// The server, the broker's ACL and the reader simulator all use it, so
// they cannot disagree.
package proto

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Version is the payload version this package speaks.
const Version = 1

// MaxPayload is the largest payload accepted.
const MaxPayload = 64 << 10

// MaxSnapshotEntries is the most entries in one snapshot chunk.
const MaxSnapshotEntries = 500

// Errors decoding a payload.
var (
	ErrTooLarge = errors.New("proto: payload too large")
	ErrVersion  = errors.New("proto: unsupported payload version")
	ErrInvalid  = errors.New("proto: invalid payload")
)

// ValidID reports whether s can be a device, zone or site id: 1 to 40 of
// a-z, 0-9 and "-", not starting with "-".
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 40 || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// ValidCard reports whether s is a card UID in upper-case hex (4, 7 or 10
// bytes).
func ValidCard(s string) bool {
	if len(s) != 8 && len(s) != 14 && len(s) != 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Payload is any message of the protocol.
type Payload interface {
	validate() error
	version() int
}

// Decode reads a payload strictly: size, JSON shape, version, then every
// field's range. A payload that fails is never partly returned.
func Decode[T any, P interface {
	*T
	Payload
}](b []byte) (T, error) {
	var v, zero T
	if len(b) > MaxPayload {
		return zero, ErrTooLarge
	}
	// One pass in the common case; a payload that does not fit, or says
	// another version, is looked at again only to tell the two apart.
	var err error
	head := b
	if f, ok := any(P(&v)).(framed); ok {
		err, head = f.unmarshal(b), f.header(b)
	} else {
		err = json.Unmarshal(b, P(&v))
	}
	if err == nil && P(&v).version() == Version {
		if err := P(&v).validate(); err != nil {
			return zero, err
		}
		return v, nil
	}
	var v1 struct {
		V json.RawMessage `json:"v"`
	}
	if herr := json.Unmarshal(head, &v1); herr != nil {
		return zero, invalid("%v", herr)
	}
	if string(v1.V) != "1" {
		return zero, fmt.Errorf("%w: %s", ErrVersion, bytes.TrimSpace(v1.V))
	}
	return zero, invalid("%v", err)
}

// DecodeSnapshot is Decode for a snapshot chunk, into p, reusing the
// storage of p's entries: a reader taking in a large snapshot allocates
// nothing per chunk for them. p's entries are valid until the next call.
func DecodeSnapshot(b []byte, p *Snapshot) error {
	if len(b) > MaxPayload {
		return ErrTooLarge
	}
	if err := p.unmarshal(b); err == nil && p.V == Version {
		return p.validate()
	}
	_, err := Decode[Snapshot](b) // tells a bad payload from another version
	return err
}

// SnapshotChunk checks a snapshot chunk's header as Decode does and
// returns it with the chunk's rows as they are, for a device that reads
// the rows straight into its own records (docs/mqtt.md gives their form;
// ParseRow is the reference). The rows are not checked.
func SnapshotChunk(b []byte) (SnapshotHeader, string, error) {
	var h SnapshotHeader
	if len(b) > MaxPayload {
		return h, "", ErrTooLarge
	}
	var p Snapshot
	head := p.header(b)
	if err := json.Unmarshal(head, &h); err != nil || h.V != Version {
		_, err := Decode[Snapshot](b) // tells a bad payload from another version
		return h, "", err
	}
	p = Snapshot{V: h.V, Zone: h.Zone, Seq: h.Seq, Snapshot: h.Snapshot, Chunk: h.Chunk, Chunks: h.Chunks}
	if err := p.validate(); err != nil {
		return h, "", err
	}
	if h.N < 0 || h.N > MaxSnapshotEntries {
		return h, "", invalid("snapshot: %d entries", h.N)
	}
	rows := ""
	if len(head) < len(b) {
		rows = string(b[len(head)+1:])
	}
	if (rows == "") != (h.N == 0) {
		return h, "", invalid("snapshot: %d entries announced, rows %q", h.N, rows[:min(len(rows), 40)])
	}
	return h, rows, nil
}

// Encode writes a payload, setting its version and checking it first.
func Encode(p Payload) ([]byte, error) {
	if p.version() != Version {
		return nil, fmt.Errorf("%w: %d", ErrVersion, p.version())
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	var b []byte
	var err error
	if f, ok := p.(framed); ok {
		b, err = f.marshal()
	} else {
		b, err = json.Marshal(p)
	}
	if err != nil {
		return nil, err
	}
	if len(b) > MaxPayload {
		return nil, ErrTooLarge
	}
	return b, nil
}

// State is a device's birth (online) or will (offline), retained.
type State struct {
	V        int               `json:"v"`
	State    string            `json:"state"`
	Session  uint64            `json:"session"`
	Firmware string            `json:"firmware,omitempty"`
	Clock    string            `json:"clock,omitempty"`
	Applied  map[string]uint64 `json:"applied,omitempty"`
}

func (p *State) version() int { return p.V }
func (p *State) validate() error {
	switch p.State {
	case "online":
		if p.Clock != "ok" && p.Clock != "unset" {
			return invalid("clock %q", p.Clock)
		}
	case "offline":
	default:
		return invalid("state %q", p.State)
	}
	if p.Session == 0 {
		return invalid("session 0")
	}
	if len(p.Firmware) > 64 {
		return invalid("firmware too long")
	}
	for z := range p.Applied {
		if !ValidID(z) {
			return invalid("zone %q", z)
		}
	}
	return nil
}

// Entry is one card on a zone's whitelist.
type Entry struct {
	Card    string `json:"card"`
	No      uint64 `json:"no"`
	From    int64  `json:"from"`
	Until   int64  `json:"until"`
	Sched   string `json:"sched"`
	Blocked bool   `json:"blocked"`
}

// AppendRow appends the entry's row form, as in a snapshot:
// card,no,from,until,sched,blocked (blocked is 0 or 1).
func (e *Entry) AppendRow(b []byte) []byte {
	b = append(b, e.Card...)
	b = append(b, ',')
	b = strconv.AppendUint(b, e.No, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, e.From, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, e.Until, 10)
	b = append(b, ',')
	b = append(b, e.Sched...)
	if e.Blocked {
		return append(b, ",1"...)
	}
	return append(b, ",0"...)
}

// ParseRow reads an entry's row form (see AppendRow) and validates it.
// A reader parses a hundred thousand of these in a snapshot, so it is
// written for speed: no allocation, numbers read by hand.
func ParseRow(row string) (Entry, error) {
	e, err := parseRow(row)
	if err == nil {
		err = e.validate()
	}
	if err != nil {
		return Entry{}, err
	}
	return e, nil
}

// parseRow is ParseRow without the validation (a snapshot validates its
// entries as a whole).
func parseRow(row string) (Entry, error) {
	var f [6]string
	for i := range 5 {
		j := strings.IndexByte(row, ',')
		if j < 0 {
			return Entry{}, invalid("row %q: %d fields", row, i+1)
		}
		f[i], row = row[:j], row[j+1:]
	}
	f[5] = row
	e := Entry{Card: f[0], Sched: f[4], Blocked: f[5] == "1"}
	no, ok1 := parseDec(f[1])
	from, ok2 := parseDec(f[2])
	until, ok3 := parseDec(f[3])
	if !ok1 || !ok2 || !ok3 || from > math.MaxInt64 || until > math.MaxInt64 || (f[5] != "0" && f[5] != "1") {
		return Entry{}, invalid("row of card %q: fields", e.Card)
	}
	e.No, e.From, e.Until = no, int64(from), int64(until)
	return e, nil
}

// scanRow reads one row (see AppendRow) from the start of rows, in one
// pass, and returns the rest after it. The entry is not validated.
func scanRow(rows string) (e Entry, rest string, ok bool) {
	c := strings.IndexByte(rows, ',')
	if c < 0 {
		return e, rows, false
	}
	e.Card, rows = rows[:c], rows[c+1:]
	var no, from, until uint64
	if no, rows, ok = ScanUint(rows); !ok {
		return e, rows, false
	}
	if from, rows, ok = ScanUint(rows); !ok || from > math.MaxInt64 {
		return e, rows, false
	}
	if until, rows, ok = ScanUint(rows); !ok || until > math.MaxInt64 {
		return e, rows, false
	}
	e.No, e.From, e.Until = no, int64(from), int64(until)
	if c = strings.IndexByte(rows, ','); c < 0 {
		return e, rows, false
	}
	e.Sched, rows = rows[:c], rows[c+1:]
	if rows == "" || (rows[0] != '0' && rows[0] != '1') {
		return e, rows, false
	}
	e.Blocked = rows[0] == '1'
	return e, rows[1:], true
}

// ScanUint reads an unsigned decimal number ended by a comma, as a
// snapshot row's numbers are, and returns the rest after the comma (for a
// device that reads rows straight into its records).
func ScanUint(s string) (uint64, string, bool) {
	var n uint64
	for i := 0; i < len(s) && i < 19; i++ { // 19 digits cannot overflow
		c := s[i]
		if c == ',' {
			return n, s[i+1:], i > 0
		}
		if c-'0' > 9 {
			return 0, s, false
		}
		n = n*10 + uint64(c-'0')
	}
	c := strings.IndexByte(s, ',') // a long number, or none
	if c < 0 {
		return 0, s, false
	}
	n, ok := parseDec(s[:c])
	return n, s[c+1:], ok
}

// parseDec reads an unsigned decimal number (digits only).
func parseDec(s string) (uint64, bool) {
	if len(s) == 0 || len(s) > 19 { // 19 digits cannot overflow
		n, err := strconv.ParseUint(s, 10, 64)
		return n, err == nil
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i] - '0'
		if c > 9 {
			return 0, false
		}
		n = n*10 + uint64(c)
	}
	return n, true
}

func (e *Entry) validate() error {
	if !ValidCard(e.Card) {
		return invalid("card %q", e.Card)
	}
	if e.No == 0 || e.From < 0 || e.Until <= e.From {
		return invalid("card %s: number or validity", e.Card)
	}
	if !ValidID(e.Sched) {
		return invalid("card %s: schedule %q", e.Card, e.Sched)
	}
	return nil
}

// Op is one whitelist operation: put an entry, or delete a card.
type Op struct {
	Op string `json:"op"`
	Entry
}

// MarshalJSON writes a del with only its card.
func (o Op) MarshalJSON() ([]byte, error) {
	if o.Op == "del" {
		return json.Marshal(struct {
			Op   string `json:"op"`
			Card string `json:"card"`
		}{o.Op, o.Card})
	}
	type plain Op
	return json.Marshal(plain(o))
}

// Change is one numbered whitelist change of a zone.
type Change struct {
	V    int    `json:"v"`
	Zone string `json:"zone"`
	Seq  uint64 `json:"seq"`
	Ops  []Op   `json:"ops"`
}

func (p *Change) version() int { return p.V }
func (p *Change) validate() error {
	if !ValidID(p.Zone) || p.Seq == 0 || len(p.Ops) == 0 {
		return invalid("change: zone %q seq %d ops %d", p.Zone, p.Seq, len(p.Ops))
	}
	for i := range p.Ops {
		o := &p.Ops[i]
		switch o.Op {
		case "put":
			if err := o.Entry.validate(); err != nil {
				return err
			}
		case "del":
			if !ValidCard(o.Card) {
				return invalid("del card %q", o.Card)
			}
		default:
			return invalid("op %q", o.Op)
		}
	}
	return nil
}

// Ack says a device has applied a zone's changes up to Seq.
type Ack struct {
	V    int    `json:"v"`
	Zone string `json:"zone"`
	Seq  uint64 `json:"seq"`
}

func (p *Ack) version() int { return p.V }
func (p *Ack) validate() error {
	if !ValidID(p.Zone) || p.Seq == 0 {
		return invalid("ack: zone %q seq %d", p.Zone, p.Seq)
	}
	return nil
}

// Sync asks for each zone's changes after the sequence given.
type Sync struct {
	V     int               `json:"v"`
	Zones map[string]uint64 `json:"zones"`
}

func (p *Sync) version() int { return p.V }
func (p *Sync) validate() error {
	if len(p.Zones) == 0 || len(p.Zones) > 64 {
		return invalid("sync: %d zones", len(p.Zones))
	}
	for z := range p.Zones {
		if !ValidID(z) {
			return invalid("sync zone %q", z)
		}
	}
	return nil
}

// Snapshot is one chunk of a zone's whole whitelist as of Seq. On the wire
// it is not one JSON document: a JSON header line (the fields below and
// "n", the number of entries), then each entry's row form (see
// Entry.AppendRow) on a line of its own. A reader parses the rows without
// a JSON parser, which makes a large snapshot several times cheaper.
type Snapshot struct {
	V        int     `json:"v"`
	Zone     string  `json:"zone"`
	Seq      uint64  `json:"seq"`
	Snapshot string  `json:"snapshot"`
	Chunk    int     `json:"chunk"`
	Chunks   int     `json:"chunks"`
	Entries  []Entry `json:"-"`
}

// SnapshotHeader is a snapshot chunk's first line.
type SnapshotHeader struct {
	V        int    `json:"v"`
	Zone     string `json:"zone"`
	Seq      uint64 `json:"seq"`
	Snapshot string `json:"snapshot"`
	Chunk    int    `json:"chunk"`
	Chunks   int    `json:"chunks"`
	N        int    `json:"n"`
}

// AppendSnapshot appends a snapshot chunk: h's line, then rows, which must
// be h.N entries in row form separated by "\n" (as stored; not checked).
func AppendSnapshot(b []byte, h SnapshotHeader, rows string) ([]byte, error) {
	h.V = Version
	head, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	b = append(b, head...)
	b = append(b, '\n')
	return append(b, rows...), nil
}

// header is a framed payload's JSON part, for Decode's version check.
func (p *Snapshot) header(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i]
	}
	return b
}

func (p *Snapshot) marshal() ([]byte, error) {
	var rows []byte
	for i := range p.Entries {
		if i > 0 {
			rows = append(rows, '\n')
		}
		rows = p.Entries[i].AppendRow(rows)
	}
	return AppendSnapshot(nil, SnapshotHeader{p.V, p.Zone, p.Seq, p.Snapshot, p.Chunk, p.Chunks, len(p.Entries)}, string(rows))
}

func (p *Snapshot) unmarshal(b []byte) error {
	var h SnapshotHeader
	head := p.header(b)
	if err := json.Unmarshal(head, &h); err != nil {
		return err
	}
	entries := p.Entries[:0] // DecodeSnapshot reuses them
	*p = Snapshot{V: h.V, Zone: h.Zone, Seq: h.Seq, Snapshot: h.Snapshot, Chunk: h.Chunk, Chunks: h.Chunks}
	if h.V != Version {
		return nil // Decode reports the version
	}
	if h.N < 0 || h.N > MaxSnapshotEntries {
		return invalid("snapshot: %d entries", h.N)
	}
	rows := ""
	if len(head) < len(b) {
		rows = string(b[len(head)+1:])
	}
	if (rows == "") != (h.N == 0) {
		return invalid("snapshot: %d entries announced, rows %q", h.N, rows[:min(len(rows), 40)])
	}
	if h.N == 0 {
		return nil
	}
	p.Entries = slices.Grow(entries, h.N)
	for {
		if len(p.Entries) == h.N {
			return invalid("snapshot: more than %d entries", h.N)
		}
		var e Entry
		var ok bool
		if e, rows, ok = scanRow(rows); !ok {
			return invalid("snapshot: row %d", len(p.Entries)+1)
		}
		p.Entries = append(p.Entries, e)
		if rows == "" {
			break
		}
		if rows[0] != '\n' {
			return invalid("snapshot: row %d", len(p.Entries))
		}
		rows = rows[1:]
	}
	if len(p.Entries) != h.N {
		return invalid("snapshot: %d entries announced, %d sent", h.N, len(p.Entries))
	}
	return nil
}

// framed is a payload that is not one JSON document.
type framed interface {
	header(b []byte) []byte
	marshal() ([]byte, error)
	unmarshal(b []byte) error
}

func (p *Snapshot) version() int { return p.V }
func (p *Snapshot) validate() error {
	if !ValidID(p.Zone) || !ValidID(p.Snapshot) || p.Chunks < 1 || p.Chunk < 0 || p.Chunk >= p.Chunks ||
		len(p.Entries) > MaxSnapshotEntries || p.Chunks > 1_000_000 {
		return invalid("snapshot: zone %q id %q chunk %d/%d entries %d", p.Zone, p.Snapshot, p.Chunk, p.Chunks, len(p.Entries))
	}
	for i := range p.Entries {
		if err := p.Entries[i].validate(); err != nil {
			return err
		}
	}
	return nil
}

// Event kinds and denial reasons.
var (
	EventKinds  = []string{"granted", "denied", "door_forced", "door_held", "tamper", "pass_scan", "pass_release", "pass_mismatch"}
	DenyReasons = []string{"unknown", "blocked", "not_yet_valid", "expired", "schedule", "zone"}
)

// Event is something that happened at a device.
type Event struct {
	Seq    uint64 `json:"seq"`
	At     int64  `json:"at"`
	Clock  string `json:"clock"`
	Kind   string `json:"kind"`
	Card   string `json:"card,omitempty"`
	Zone   string `json:"zone,omitempty"`
	Reason string `json:"reason,omitempty"`
	Data   string `json:"data,omitempty"`
	// Mover and Plate, on a pass_release: the last digits of the mover's
	// ID and the vehicle's plate, as the guard entered them.
	Mover string `json:"mover,omitempty"`
	Plate string `json:"plate,omitempty"`
	// Offline, on a pass_release: the terminal checked the pass with the
	// site's public key alone (it had no verdict from the server).
	Offline bool `json:"offline,omitempty"`
}

func (e *Event) validate() error {
	switch {
	case e.Seq == 0:
		return invalid("event seq 0")
	case e.Clock != "ok" && e.Clock != "unset":
		return invalid("event %d clock %q", e.Seq, e.Clock)
	case !slices.Contains(EventKinds, e.Kind):
		return invalid("event %d kind %q", e.Seq, e.Kind)
	case e.Card != "" && !ValidCard(e.Card):
		return invalid("event %d card %q", e.Seq, e.Card)
	case e.Zone != "" && !ValidID(e.Zone):
		return invalid("event %d zone %q", e.Seq, e.Zone)
	case (e.Kind == "denied") != (e.Reason != ""), e.Reason != "" && !slices.Contains(DenyReasons, e.Reason):
		return invalid("event %d reason %q for %s", e.Seq, e.Reason, e.Kind)
	case len(e.Data) > 1024:
		return invalid("event %d data too long", e.Seq)
	case strings.HasPrefix(e.Kind, "pass_") && e.Data == "":
		return invalid("event %d %s without data", e.Seq, e.Kind)
	case len(e.Mover) > 8 || len(e.Plate) > 16:
		return invalid("event %d mover or plate too long", e.Seq)
	}
	return nil
}

// Events carries one or more events, in sequence order.
type Events struct {
	V      int     `json:"v"`
	Events []Event `json:"events"`
}

func (p *Events) version() int { return p.V }
func (p *Events) validate() error {
	if len(p.Events) == 0 {
		return invalid("no events")
	}
	for i := range p.Events {
		if err := p.Events[i].validate(); err != nil {
			return err
		}
		if i > 0 && p.Events[i].Seq <= p.Events[i-1].Seq {
			return invalid("events out of order at %d", p.Events[i].Seq)
		}
	}
	return nil
}

// EventAck says the server holds every event of the device up to Seq.
type EventAck struct {
	V   int    `json:"v"`
	Seq uint64 `json:"seq"`
}

func (p *EventAck) version() int { return p.V }
func (p *EventAck) validate() error {
	if p.Seq == 0 {
		return invalid("event ack seq 0")
	}
	return nil
}

// Commands a device understands ("verdict": a gate terminal's answer to
// a pass_scan, sent by the server only).
var Commands = []string{"open", "resync", "reboot", "verdict"}

// Command is an order to one device; never retained, ignored after
// Expires (Unix ms).
type Command struct {
	V       int      `json:"v"`
	ID      string   `json:"id"`
	Cmd     string   `json:"cmd"`
	Expires int64    `json:"expires"`
	Verdict *Verdict `json:"verdict,omitempty"`
}

// Verdict is the server's answer to a gate terminal's pass_scan: whether
// the pass may go through here and now, and what the guard checks.
type Verdict struct {
	// Scan is the seq of the pass_scan event answered.
	Scan uint64 `json:"scan"`
	OK   bool   `json:"ok"`
	// Reason, when not OK: malformed, forged, unknown, cancelled, used,
	// expired, not_yet_valid, wrong_gate.
	Reason string `json:"reason,omitempty"`
	// Pass is the pass number; Unit, Items, Plate and Until (Unix ms, the
	// end of its window) what the guard checks against the goods.
	Pass  string `json:"pass,omitempty"`
	Unit  string `json:"unit,omitempty"`
	Items string `json:"items,omitempty"`
	Plate string `json:"plate,omitempty"`
	Until int64  `json:"until,omitempty"`
	// Warn is a warning to show (the unit's arrears, approved).
	Warn string `json:"warn,omitempty"`
}

// VerdictReasons are the reasons a pass is refused.
var VerdictReasons = []string{"malformed", "forged", "unknown", "cancelled", "used", "expired", "not_yet_valid", "wrong_gate"}

func (p *Command) version() int { return p.V }
func (p *Command) validate() error {
	if !slices.Contains(Commands, p.Cmd) || p.Expires <= 0 || p.ID == "" || len(p.ID) > 64 || strings.ContainsAny(p.ID, "/#+") {
		return invalid("command %q id %q", p.Cmd, p.ID)
	}
	if (p.Cmd == "verdict") != (p.Verdict != nil) {
		return invalid("command %q with verdict %v", p.Cmd, p.Verdict != nil)
	}
	if v := p.Verdict; v != nil && (v.Scan == 0 || v.OK == (v.Reason != "") || v.Reason != "" && !slices.Contains(VerdictReasons, v.Reason) ||
		len(v.Items) > 2048 || len(v.Warn) > 512 || len(v.Pass) > 32 || len(v.Unit) > 32 || len(v.Plate) > 16) {
		return invalid("verdict for scan %d", v.Scan)
	}
	return nil
}

// Segment is a weekly time segment of a schedule: on the listed days
// ("1234567", Monday = 1; "H" for the site's holidays, which take the
// place of their weekday), from From to To ("08:00", "18:30"; To after
// From), site local time.
type Segment struct {
	Days string `json:"days"`
	From string `json:"from"`
	To   string `json:"to"`
}

// Config is the site configuration every device reads (retained): its
// time zone, the named schedules whitelist entries refer to ("always" is
// built in), and the holidays (dates, site time) on which schedules use
// their "H" segments instead of the weekday's.
type Config struct {
	V         int                  `json:"v"`
	TZ        string               `json:"tz"`
	Schedules map[string][]Segment `json:"schedules"`
	Holidays  []string             `json:"holidays,omitempty"`
	// PassKeys are the site's gate-pass public keys (Ed25519, base64 of
	// the 32 bytes): a gate terminal checks a pass with them while it has
	// no verdict from the server (docs/passcode.md).
	PassKeys []string `json:"pass_keys,omitempty"`
}

var hhmmRE = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$`)
var daysRE = regexp.MustCompile(`^[1-7H]{1,8}$`)
var dateRE = regexp.MustCompile(`^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$`)

func (p *Config) version() int { return p.V }
func (p *Config) validate() error {
	if p.TZ == "" || len(p.TZ) > 64 {
		return invalid("config tz %q", p.TZ)
	}
	if len(p.Holidays) > 366 {
		return invalid("config: %d holidays", len(p.Holidays))
	}
	for _, d := range p.Holidays {
		if !dateRE.MatchString(d) {
			return invalid("holiday %q", d)
		}
	}
	for name, segs := range p.Schedules {
		if !ValidID(name) || name == "always" || len(segs) == 0 || len(segs) > 32 {
			return invalid("schedule %q", name)
		}
		for _, sg := range segs {
			if !daysRE.MatchString(sg.Days) || !hhmmRE.MatchString(sg.From) || !hhmmRE.MatchString(sg.To) || sg.To <= sg.From {
				return invalid("schedule %q segment %+v", name, sg)
			}
		}
	}
	if len(p.PassKeys) > 4 {
		return invalid("%d pass keys", len(p.PassKeys))
	}
	for _, k := range p.PassKeys {
		if b, err := base64.StdEncoding.DecodeString(k); err != nil || len(b) != 32 {
			return invalid("pass key %q", k)
		}
	}
	return nil
}
