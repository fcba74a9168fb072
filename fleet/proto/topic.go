package proto

import (
	"slices"
	"strings"
)

// Device topic kinds (dev/<id>/<kind>).
const (
	KindState  = "state"
	KindWL     = "wl"
	KindSnap   = "snap"
	KindAck    = "ack"
	KindSync   = "sync"
	KindEvt    = "evt"
	KindEvtAck = "evtack"
	KindCmd    = "cmd"
)

// deviceWrites are what a device publishes; deviceReads what it receives.
var (
	deviceWrites = []string{KindState, KindAck, KindSync, KindEvt}
	deviceReads  = []string{KindWL, KindSnap, KindEvtAck, KindCmd}
)

// Topics names the topics of one site.
type Topics struct{ Site string }

// Prefix is onecard/v1/<site>/.
func (t Topics) Prefix() string { return "onecard/v1/" + t.Site + "/" }

// Device is dev/<id>/<kind>.
func (t Topics) Device(id, kind string) string { return t.Prefix() + "dev/" + id + "/" + kind }

// Config is the site configuration topic (retained, read by every device).
func (t Topics) Config() string { return t.Prefix() + "config" }

// Zone is zone/<zone>/wl, where a zone's changes are broadcast.
func (t Topics) Zone(zone string) string { return t.Prefix() + "zone/" + zone + "/wl" }

// Topic is a parsed topic name.
type Topic struct {
	Device string // dev/<id>/…
	Zone   string // zone/<zone>/wl
	Kind   string
}

// Parse reads a topic name of this site; ok is false for anything else.
func (t Topics) Parse(topic string) (Topic, bool) {
	rest, ok := strings.CutPrefix(topic, t.Prefix())
	if !ok {
		return Topic{}, false
	}
	if rest == "config" {
		return Topic{Kind: "config"}, true
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || !ValidID(parts[1]) {
		return Topic{}, false
	}
	switch {
	case parts[0] == "dev" && (slices.Contains(deviceWrites, parts[2]) || slices.Contains(deviceReads, parts[2])):
		return Topic{Device: parts[1], Kind: parts[2]}, true
	case parts[0] == "zone" && parts[2] == KindWL:
		return Topic{Zone: parts[1], Kind: KindWL}, true
	}
	return Topic{}, false
}

// Principal is who holds a broker connection.
type Principal struct {
	Role  string // RoleDevice, RoleServer or RoleMonitor
	ID    string
	Zones []string // a device's zones
}

// Roles of broker clients.
const (
	RoleDevice  = "device"
	RoleServer  = "server"
	RoleMonitor = "monitor"
)

// Allowed decides whether p may publish to (write) or subscribe to (!write)
// topic, a topic name or, for subscriptions, a filter. Devices get their
// own topics and their zones' broadcasts, by exact name only; the monitor
// reads everything of the site and writes nothing; the server does
// anything under the site's prefix.
func (t Topics) Allowed(p Principal, topic string, write bool) bool {
	if p.Role == RoleMonitor {
		// The monitor reads everything onecard publishes (mosquitto_sub
		// -t 'onecard/v1/#') and writes nothing.
		return !write && strings.HasPrefix(topic, "onecard/v1/")
	}
	if !strings.HasPrefix(topic, t.Prefix()) {
		return false
	}
	switch p.Role {
	case RoleServer:
		return true
	case RoleDevice:
		if strings.ContainsAny(topic, "+#") {
			return false
		}
		tp, ok := t.Parse(topic)
		if !ok {
			return false
		}
		if tp.Kind == "config" {
			return !write
		}
		if tp.Zone != "" {
			return !write && slices.Contains(p.Zones, tp.Zone)
		}
		if tp.Device != p.ID {
			return false
		}
		if write {
			return slices.Contains(deviceWrites, tp.Kind)
		}
		return slices.Contains(deviceReads, tp.Kind)
	}
	return false
}

// DeviceSubscriptions are the topics a device subscribes to.
func (t Topics) DeviceSubscriptions(id string, zones []string) []string {
	var out []string
	for _, k := range deviceReads {
		out = append(out, t.Device(id, k))
	}
	for _, z := range zones {
		out = append(out, t.Zone(z))
	}
	return append(out, t.Config())
}
