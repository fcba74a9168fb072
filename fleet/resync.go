package fleet

import (
	"context"
	"sync"
	"time"

	"onecard/fault"
)

// ZoneProgress is how far a resync of one zone has come: entries sent in
// snapshot chunks, and whether the device has acknowledged the snapshot.
type ZoneProgress struct {
	Zone    string `json:"zone"`
	Seq     int64  `json:"seq"`
	Entries int    `json:"entries"`
	Sent    int    `json:"sent"`
	Acked   bool   `json:"acked"`
	Error   string `json:"error,omitempty"`
	sentAll bool
}

// Percent is the share done: sending is the first nine tenths, the
// device's acknowledgement the last.
func (z ZoneProgress) Percent() int {
	if z.Acked {
		return 100
	}
	if z.Entries == 0 {
		return 90
	}
	return z.Sent * 90 / z.Entries
}

// Resync is a supervisor's resync of one device.
type Resync struct {
	Device  string         `json:"device"`
	Started time.Time      `json:"started"`
	Zones   []ZoneProgress `json:"zones"`
}

// Done reports whether every zone is acknowledged.
func (r Resync) Done() bool {
	for _, z := range r.Zones {
		if !z.Acked {
			return false
		}
	}
	return len(r.Zones) > 0
}

type resyncs struct {
	mu  sync.Mutex
	all map[string]*Resync
}

// StartResync sends the device a snapshot of each of its zones, whatever
// it holds, and tracks the progress (ResyncProgress).
func (s *Service) StartResync(ctx context.Context, code string) error {
	if s.bus == nil {
		return fault.Conflict("device", "fleet_not_running")
	}
	d, err := s.deviceRow(ctx, s.db, code)
	if err != nil {
		return fault.NotFound("device_not_found")
	}
	if d.Disabled {
		return fault.Conflict("device", "device_disabled")
	}
	zones, err := s.deviceZones(ctx, s.db, d.ID)
	if err != nil {
		return err
	}
	r := &Resync{Device: code, Started: s.now()}
	for _, z := range zones {
		r.Zones = append(r.Zones, ZoneProgress{Zone: z.Code})
	}
	s.resync.mu.Lock()
	if s.resync.all == nil {
		s.resync.all = map[string]*Resync{}
	}
	s.resync.all[code] = r
	s.resync.mu.Unlock()
	go func() {
		for i, z := range zones {
			err := s.sendSnapshotTracked(context.WithoutCancel(ctx), code, z.ID, z.Code, func(seq int64, entries, sent int) {
				s.resync.mu.Lock()
				zp := &r.Zones[i]
				zp.Seq, zp.Entries, zp.Sent = seq, entries, sent
				zp.sentAll = sent == entries
				// An empty zone at sequence 0 has nothing to acknowledge.
				zp.Acked = zp.Acked || (zp.sentAll && seq == 0)
				s.resync.mu.Unlock()
			})
			if err != nil {
				s.resync.mu.Lock()
				r.Zones[i].Error = err.Error()
				s.resync.mu.Unlock()
			}
		}
	}()
	return nil
}

// ResyncProgress returns the latest resync of a device, if any.
func (s *Service) ResyncProgress(code string) (Resync, bool) {
	s.resync.mu.Lock()
	defer s.resync.mu.Unlock()
	r, ok := s.resync.all[code]
	if !ok {
		return Resync{}, false
	}
	out := *r
	out.Zones = append([]ZoneProgress(nil), r.Zones...)
	return out, true
}

// resyncAcked marks a resync's zone acknowledged when the device's
// acknowledgement reaches the snapshot's sequence.
func (s *Service) resyncAcked(code, zone string, seq int64) {
	s.resync.mu.Lock()
	defer s.resync.mu.Unlock()
	r, ok := s.resync.all[code]
	if !ok {
		return
	}
	for i := range r.Zones {
		z := &r.Zones[i]
		if z.Zone == zone && z.sentAll && seq >= z.Seq {
			z.Acked = true
		}
	}
}
