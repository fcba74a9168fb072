package fleet

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"

	"onecard/auth"
	"onecard/devices/broker"
	"onecard/fault"
	"onecard/fleet/proto"
	"onecard/store"
)

// Kinds of device.
var Kinds = []string{"reader", "turnstile", "lift", "kiosk-reader", "gate-terminal"}

// Device is a registered device and what the fleet knows of it.
type Device struct {
	ID          int64      `db:"id" json:"-"`
	Code        string     `db:"code" json:"id"`
	Kind        string     `db:"kind" json:"kind"`
	Name        string     `db:"name" json:"name"`
	Disabled    bool       `db:"disabled" json:"disabled"`
	Online      bool       `db:"online" json:"online"`
	Session     int64      `db:"session" json:"session"`
	Firmware    string     `db:"firmware" json:"firmware"`
	ClockOK     bool       `db:"clock_ok" json:"clock_ok"`
	LastSeenAt  *time.Time `db:"last_seen_at" json:"last_seen_at,omitempty"`
	EventsAcked int64      `db:"events_acked" json:"events_acked"`
	CreatedAt   time.Time  `db:"created_at" json:"created_at"`
	// Zones maps each zone to its sequence applied by the device and the
	// zone's current sequence.
	Zones []ZoneLag `db:"-" json:"zones"`
}

// ZoneLag is a device's progress in one zone.
type ZoneLag struct {
	Zone    string `db:"zone" json:"zone"`
	Acked   int64  `db:"acked" json:"acked"`
	Current int64  `db:"current" json:"current"`
}

// Lag is how many changes the device has yet to apply, over its zones.
func (d Device) Lag() int64 {
	var n int64
	for _, z := range d.Zones {
		n += z.Current - z.Acked
	}
	return n
}

const deviceCols = "id, code, kind, name, disabled, online, session, firmware, clock_ok, last_seen_at, events_acked, created_at"

// NewDevice is the input for AddDevice.
type NewDevice struct {
	Code  string   `json:"id"`
	Kind  string   `json:"kind"`
	Name  string   `json:"name"`
	Zones []string `json:"zones"`
}

// EnsureZone returns a zone's id, creating it if new.
func (s *Service) EnsureZone(ctx context.Context, q store.Q, code, name string) (int64, error) {
	if !proto.ValidID(code) {
		return 0, fault.Invalid("zone", "zone_invalid", "zone", code)
	}
	var id int64
	err := q.Get(ctx, &id, "SELECT id FROM zones WHERE site_id = ? AND code = ?", s.siteID, code)
	if store.IsNoRows(err) {
		if name == "" {
			name = code
		}
		id, err = q.Insert(ctx, "INSERT INTO zones (site_id, code, name, created_at) VALUES (?, ?, ?, ?) RETURNING id",
			s.siteID, code, name, s.now())
	}
	if err != nil {
		return 0, fmt.Errorf("fleet: zone %s: %w", code, err)
	}
	return id, nil
}

// AddDevice registers a device in its zones and returns its secret, shown
// once: only its hash is kept.
func (s *Service) AddDevice(ctx context.Context, in NewDevice) (Device, string, error) {
	in.Code = strings.TrimSpace(in.Code)
	switch {
	case !proto.ValidID(in.Code) || in.Code == ServerUser || in.Code == MonitorUser:
		return Device{}, "", fault.Invalid("id", "device_id_invalid", "id", in.Code)
	case !slices.Contains(Kinds, in.Kind):
		return Device{}, "", fault.Invalid("kind", "device_kind_invalid")
	case len(in.Zones) == 0:
		return Device{}, "", fault.Invalid("zones", "device_needs_zone")
	}
	if in.Name == "" {
		in.Name = in.Code
	}
	secret := newSecret()
	hash, err := broker.HashSecret(secret)
	if err != nil {
		return Device{}, "", err
	}
	var out Device
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		now := s.now()
		id, err := tx.Insert(ctx, `INSERT INTO devices (site_id, code, kind, name, secret_hash, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`, s.siteID, in.Code, in.Kind, in.Name, hash, now, now)
		if store.IsUnique(err) {
			return fault.Conflict("id", "device_id_taken", "id", in.Code)
		}
		if err != nil {
			return fmt.Errorf("fleet: add device: %w", err)
		}
		for _, z := range in.Zones {
			zid, err := s.EnsureZone(ctx, tx, z, "")
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "INSERT INTO device_zones (device_id, zone_id) VALUES (?, ?)", id, zid); err != nil && !store.IsUnique(err) {
				return fmt.Errorf("fleet: device zone: %w", err)
			}
		}
		if out, err = s.device(ctx, tx, in.Code); err != nil {
			return err
		}
		return auth.Record(ctx, tx, auth.Entry{Action: "device.add", Entity: "device", EntityID: in.Code, After: out})
	})
	if err != nil {
		return Device{}, "", err
	}
	s.acks.forget(in.Code)
	return out, secret, nil
}

func newSecret() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *Service) device(ctx context.Context, q store.Q, code string) (Device, error) {
	var d Device
	err := q.Get(ctx, &d, "SELECT "+deviceCols+" FROM devices WHERE site_id = ? AND code = ?", s.siteID, code)
	if store.IsNoRows(err) {
		return d, fault.NotFound("device_not_found")
	}
	if err != nil {
		return d, fmt.Errorf("fleet: device %s: %w", code, err)
	}
	err = q.Select(ctx, &d.Zones, `SELECT z.code AS zone, dz.acked, z.seq AS current FROM device_zones dz
		JOIN zones z ON z.id = dz.zone_id WHERE dz.device_id = ? ORDER BY z.code`, d.ID)
	if err != nil {
		return d, fmt.Errorf("fleet: device zones: %w", err)
	}
	return d, nil
}

// Device returns one device with its zones.
func (s *Service) Device(ctx context.Context, code string) (Device, error) {
	d, err := s.device(ctx, s.db, code)
	if err == nil {
		s.overlayAcks(&d)
	}
	return d, err
}

// overlayAcks shows acknowledgements not yet written to the database.
func (s *Service) overlayAcks(d *Device) {
	s.acks.mu.Lock()
	defer s.acks.mu.Unlock()
	info, ok := s.acks.devices[d.Code]
	if !ok {
		return
	}
	for i, z := range d.Zones {
		if zid, ok := info.zones[z.Zone]; ok {
			if a, ok := s.acks.acked[dzKey{info.id, zid}]; ok {
				d.Zones[i].Acked = a
			}
		}
	}
}

// Devices lists every device with its zones.
func (s *Service) Devices(ctx context.Context) ([]Device, error) {
	var list []Device
	if err := s.db.Select(ctx, &list, "SELECT "+deviceCols+" FROM devices WHERE site_id = ? ORDER BY code", s.siteID); err != nil {
		return nil, fmt.Errorf("fleet: devices: %w", err)
	}
	var lags []struct {
		DeviceID int64 `db:"device_id"`
		ZoneLag
	}
	if err := s.db.Select(ctx, &lags, `SELECT dz.device_id, z.code AS zone, dz.acked, z.seq AS current FROM device_zones dz
		JOIN zones z ON z.id = dz.zone_id WHERE z.site_id = ? ORDER BY z.code`, s.siteID); err != nil {
		return nil, fmt.Errorf("fleet: device zones: %w", err)
	}
	idx := map[int64]int{}
	for i := range list {
		idx[list[i].ID] = i
		list[i].Zones = []ZoneLag{}
	}
	for _, l := range lags {
		if i, ok := idx[l.DeviceID]; ok {
			list[i].Zones = append(list[i].Zones, l.ZoneLag)
		}
	}
	for i := range list {
		s.overlayAcks(&list[i])
	}
	return list, nil
}

// SetDisabled turns a device off: its credentials stop working at once and
// its connection is dropped. Or back on.
func (s *Service) SetDisabled(ctx context.Context, code string, disabled bool) error {
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		before, err := s.device(ctx, tx, code)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE devices SET disabled = ?, updated_at = ? WHERE id = ?", disabled, s.now(), before.ID); err != nil {
			return fmt.Errorf("fleet: disable: %w", err)
		}
		after := before
		after.Disabled = disabled
		return auth.Record(ctx, tx, auth.Entry{Action: "device.set_disabled", Entity: "device", EntityID: code, Before: before, After: after})
	})
	s.acks.forget(code)
	if err == nil && disabled && s.kick != nil {
		s.kick(code)
	}
	return err
}

// Broker users that are not devices.
const (
	ServerUser  = "onecard-server"
	MonitorUser = "monitor"
)

// Principal authenticates a broker connection: a device by its secret,
// onecard itself, or the read-only monitor.
func (s *Service) Principal(username string, password []byte) (proto.Principal, bool) {
	switch username {
	case ServerUser:
		return proto.Principal{Role: proto.RoleServer, ID: username}, s.serverSecret != "" && broker.CheckSecret(s.serverHash, string(password))
	case MonitorUser:
		return proto.Principal{Role: proto.RoleMonitor, ID: username}, s.monitorHash != "" && broker.CheckSecret(s.monitorHash, string(password))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var row struct {
		ID       int64  `db:"id"`
		Hash     string `db:"secret_hash"`
		Disabled bool   `db:"disabled"`
	}
	if err := s.db.Get(ctx, &row, "SELECT id, secret_hash, disabled FROM devices WHERE site_id = ? AND code = ?", s.siteID, username); err != nil {
		return proto.Principal{}, false
	}
	if row.Disabled || !broker.CheckSecret(row.Hash, string(password)) {
		return proto.Principal{}, false
	}
	var zones []string
	if err := s.db.Select(ctx, &zones, "SELECT z.code FROM device_zones dz JOIN zones z ON z.id = dz.zone_id WHERE dz.device_id = ?", row.ID); err != nil {
		return proto.Principal{}, false
	}
	return proto.Principal{Role: proto.RoleDevice, ID: username, Zones: zones}, true
}

// MosquittoUsers lists the broker users for an external Mosquitto.
func (s *Service) MosquittoUsers(ctx context.Context) ([]broker.MosquittoUser, error) {
	var rows []struct {
		ID   int64  `db:"id"`
		Code string `db:"code"`
		Hash string `db:"secret_hash"`
	}
	if err := s.db.Select(ctx, &rows, "SELECT id, code, secret_hash FROM devices WHERE site_id = ? AND NOT disabled ORDER BY code", s.siteID); err != nil {
		return nil, fmt.Errorf("fleet: devices: %w", err)
	}
	var out []broker.MosquittoUser
	for _, r := range rows {
		var zones []string
		if err := s.db.Select(ctx, &zones, "SELECT z.code FROM device_zones dz JOIN zones z ON z.id = dz.zone_id WHERE dz.device_id = ? ORDER BY z.code", r.ID); err != nil {
			return nil, err
		}
		out = append(out, broker.MosquittoUser{Username: r.Code, Hash: r.Hash,
			Principal: proto.Principal{Role: proto.RoleDevice, ID: r.Code, Zones: zones}})
	}
	return out, nil
}
