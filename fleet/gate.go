package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"onecard/fleet/proto"
	"onecard/store"
)

// EventHandler handles an event inside the transaction that stores it:
// what it writes for a fresh event is committed with the event, exactly
// once, or not at all (the device then sends the event again). It is also
// called for an event stored before (e.Replay: the device sent it again,
// having missed the answer): it may answer again but must write nothing. It must return an error only when the database fails; a refusal
// is an outcome to record, not an error, or the device's events stop.
type EventHandler func(ctx context.Context, tx *store.Tx, e StoredEvent) error

// HandleEvents has h handle the events of kinds (a gate pass's scans and
// releases go to the passes service). Call it before Run.
func (s *Service) HandleEvents(h EventHandler, kinds ...string) {
	if s.handlers == nil {
		s.handlers = map[string]EventHandler{}
	}
	for _, k := range kinds {
		s.handlers[k] = h
	}
}

// SendVerdict answers a gate terminal's pass_scan (docs/mqtt.md, Gate
// terminals): a command, never retained, that expires after CommandTTL.
func (s *Service) SendVerdict(ctx context.Context, device string, v proto.Verdict) error {
	if s.bus == nil {
		return fmt.Errorf("fleet: verdict for %s: the fleet is not running", device)
	}
	id := make([]byte, 8)
	rand.Read(id)
	c := proto.Command{V: proto.Version, ID: hex.EncodeToString(id), Cmd: "verdict", Expires: s.now().Add(CommandTTL).UnixMilli(), Verdict: &v}
	b, err := proto.Encode(&c)
	if err != nil {
		return err
	}
	return s.bus.Publish(ctx, s.topics.Device(device, proto.KindCmd), b, false)
}
