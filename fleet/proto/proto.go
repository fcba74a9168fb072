// Package proto is the reader fleet's MQTT protocol (docs/mqtt.md): topic
// names, who may use which topic, and the payloads with their validation.
// The server, the broker's ACL and the reader simulator all use it, so
// they cannot disagree.
package proto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
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

var (
	idRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)
	cardRE = regexp.MustCompile(`^([0-9A-F]{8}|[0-9A-F]{14}|[0-9A-F]{20})$`)
)

// ValidID reports whether s can be a device, zone or site id.
func ValidID(s string) bool { return idRE.MatchString(s) }

// ValidCard reports whether s is a card UID in upper-case hex (4, 7 or 10
// bytes).
func ValidCard(s string) bool { return cardRE.MatchString(s) }

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
	var v T
	if len(b) > MaxPayload {
		return v, ErrTooLarge
	}
	var head struct {
		V json.RawMessage `json:"v"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return v, invalid("%v", err)
	}
	if string(head.V) != "1" {
		return v, fmt.Errorf("%w: %s", ErrVersion, bytes.TrimSpace(head.V))
	}
	if err := json.Unmarshal(b, P(&v)); err != nil {
		return v, invalid("%v", err)
	}
	if err := P(&v).validate(); err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// Encode writes a payload, setting its version and checking it first.
func Encode(p Payload) ([]byte, error) {
	if p.version() != Version {
		return nil, fmt.Errorf("%w: %d", ErrVersion, p.version())
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(p)
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

// Snapshot is one chunk of a zone's whole whitelist as of Seq.
type Snapshot struct {
	V        int     `json:"v"`
	Zone     string  `json:"zone"`
	Seq      uint64  `json:"seq"`
	Snapshot string  `json:"snapshot"`
	Chunk    int     `json:"chunk"`
	Chunks   int     `json:"chunks"`
	Entries  []Entry `json:"entries"`
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
	EventKinds  = []string{"granted", "denied", "door_forced", "door_held", "tamper", "pass_scan"}
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

// Commands a device understands.
var Commands = []string{"open", "resync", "reboot"}

// Command is an order to one device; never retained, ignored after
// Expires (Unix ms).
type Command struct {
	V       int    `json:"v"`
	ID      string `json:"id"`
	Cmd     string `json:"cmd"`
	Expires int64  `json:"expires"`
}

func (p *Command) version() int { return p.V }
func (p *Command) validate() error {
	if !slices.Contains(Commands, p.Cmd) || p.Expires <= 0 || p.ID == "" || len(p.ID) > 64 || strings.ContainsAny(p.ID, "/#+") {
		return invalid("command %q id %q", p.Cmd, p.ID)
	}
	return nil
}

// Segment is a weekly time segment of a schedule: on the listed weekdays
// ("1234567", Monday = 1), from From to To ("08:00", "18:30"; To after
// From), site local time.
type Segment struct {
	Days string `json:"days"`
	From string `json:"from"`
	To   string `json:"to"`
}

// Config is the site configuration every device reads (retained): its
// time zone and the named schedules whitelist entries refer to. "always"
// is built in.
type Config struct {
	V         int                  `json:"v"`
	TZ        string               `json:"tz"`
	Schedules map[string][]Segment `json:"schedules"`
}

var hhmmRE = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$`)
var daysRE = regexp.MustCompile(`^[1-7]{1,7}$`)

func (p *Config) version() int { return p.V }
func (p *Config) validate() error {
	if p.TZ == "" || len(p.TZ) > 64 {
		return invalid("config tz %q", p.TZ)
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
	return nil
}
