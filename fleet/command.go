package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"onecard/auth"
	"onecard/fault"
	"onecard/fleet/proto"
	"onecard/store"
)

// CommandTTL is how long a command stays valid: a reader that gets it
// later (after an outage) ignores it, so a door never opens long after
// someone asked.
const CommandTTL = 30 * time.Second

// SendCommand orders one device to open its door, resync (ask for
// snapshots of its zones) or reboot. Commands are never retained and
// expire after CommandTTL; each is recorded in the audit log.
func (s *Service) SendCommand(ctx context.Context, code, cmd string) (proto.Command, error) {
	if !slices.Contains(proto.Commands, cmd) || cmd == "verdict" {
		return proto.Command{}, fault.Invalid("cmd", "command_invalid")
	}
	if s.bus == nil {
		return proto.Command{}, fault.Conflict("device", "fleet_not_running")
	}
	d, err := s.device(ctx, s.db, code)
	if err != nil {
		return proto.Command{}, err
	}
	if d.Disabled {
		return proto.Command{}, fault.Conflict("device", "device_disabled")
	}
	id := make([]byte, 8)
	rand.Read(id)
	c := proto.Command{V: proto.Version, ID: hex.EncodeToString(id), Cmd: cmd, Expires: s.now().Add(CommandTTL).UnixMilli()}
	b, err := proto.Encode(&c)
	if err != nil {
		return c, err
	}
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		return auth.Record(ctx, tx, auth.Entry{Action: "device.command", Entity: "device", EntityID: code,
			After: map[string]any{"cmd": cmd, "id": c.ID, "online": d.Online}})
	})
	if err != nil {
		return c, err
	}
	if err := s.bus.Publish(ctx, s.topics.Device(code, proto.KindCmd), b, false); err != nil {
		return c, fmt.Errorf("fleet: send %s to %s: %w", cmd, code, err)
	}
	return c, nil
}
