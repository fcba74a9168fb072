package fleet

import (
	"context"
	"fmt"
	"sync"
	"time"

	"onecard/store"
)

// acks keeps devices' acknowledgements in memory, where a thousand
// readers acknowledging one change cost no thousand transactions, and
// writes them to device_zones in batches. Losing the last batch in a crash
// costs nothing but resends the devices already hold.
type acks struct {
	mu      sync.Mutex
	devices map[string]*devInfo // by device code
	acked   map[dzKey]int64     // latest known acknowledgement
	dirty   map[dzKey]int64     // not yet written
	zoneSeq map[int64]int64     // zone id → highest sequence known committed
	changed chan struct{}       // closed and replaced at each new ack
}

type dzKey struct{ device, zone int64 }

type devInfo struct {
	id    int64
	zones map[string]int64 // zone code → zone id
}

func newAcks() *acks {
	return &acks{devices: map[string]*devInfo{}, acked: map[dzKey]int64{}, dirty: map[dzKey]int64{},
		zoneSeq: map[int64]int64{}, changed: make(chan struct{})}
}

// forget drops cached registry data (a device was added or changed).
func (a *acks) forget(code string) {
	a.mu.Lock()
	delete(a.devices, code)
	a.mu.Unlock()
}

// device returns a device's id and zones, from the cache or the database.
func (s *Service) deviceInfo(ctx context.Context, code string) (*devInfo, error) {
	s.acks.mu.Lock()
	info, ok := s.acks.devices[code]
	s.acks.mu.Unlock()
	if ok {
		return info, nil
	}
	d, err := s.deviceRow(ctx, s.db, code)
	if err != nil {
		return nil, err
	}
	zones, err := s.deviceZones(ctx, s.db, d.ID)
	if err != nil {
		return nil, err
	}
	info = &devInfo{id: d.ID, zones: map[string]int64{}}
	s.acks.mu.Lock()
	defer s.acks.mu.Unlock()
	for _, z := range zones {
		info.zones[z.Code] = z.ID
		k := dzKey{d.ID, z.ID}
		if _, known := s.acks.acked[k]; !known {
			s.acks.acked[k] = z.Acked
		}
		s.acks.zoneSeq[z.ID] = max(s.acks.zoneSeq[z.ID], z.Seq)
	}
	s.acks.devices[code] = info
	return info, nil
}

// record notes an acknowledgement; set (a birth's applied) replaces,
// otherwise the highest wins.
func (a *acks) record(k dzKey, seq int64, set bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !set && a.acked[k] >= seq {
		return
	}
	a.acked[k] = seq
	a.dirty[k] = seq
	close(a.changed)
	a.changed = make(chan struct{})
}

// zoneSeqAtLeast reports whether zone has reached seq, reading the
// database when the cache says no (a change committed since).
func (s *Service) zoneSeqAtLeast(ctx context.Context, zoneID, seq int64) (bool, error) {
	s.acks.mu.Lock()
	known := s.acks.zoneSeq[zoneID]
	s.acks.mu.Unlock()
	if seq <= known {
		return true, nil
	}
	var cur int64
	if err := s.db.Get(ctx, &cur, "SELECT seq FROM zones WHERE id = ?", zoneID); err != nil {
		return false, err
	}
	s.acks.mu.Lock()
	s.acks.zoneSeq[zoneID] = max(s.acks.zoneSeq[zoneID], cur)
	s.acks.mu.Unlock()
	return seq <= cur, nil
}

// flushAcks writes pending acknowledgements every interval until ctx
// ends, then once more.
func (s *Service) flushAcks(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.writeAcks(context.WithoutCancel(ctx))
			return
		case <-t.C:
			s.writeAcks(ctx)
		}
	}
}

func (s *Service) writeAcks(ctx context.Context) {
	s.acks.mu.Lock()
	dirty := s.acks.dirty
	s.acks.dirty = map[dzKey]int64{}
	s.acks.mu.Unlock()
	if len(dirty) == 0 {
		return
	}
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		for k, seq := range dirty {
			if _, err := tx.Exec(ctx, "UPDATE device_zones SET acked = ? WHERE device_id = ? AND zone_id = ?", seq, k.device, k.zone); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.log.Warn("fleet: write acknowledgements", "err", err)
		s.acks.mu.Lock()
		for k, seq := range dirty {
			if _, newer := s.acks.dirty[k]; !newer {
				s.acks.dirty[k] = seq
			}
		}
		s.acks.mu.Unlock()
	}
}

// WaitAcknowledged waits until every device of zone has acknowledged seq,
// as the server knows it (the moment a change has reached the whole zone).
func (s *Service) WaitAcknowledged(ctx context.Context, zone string, seq uint64) error {
	var members []struct {
		Code string `db:"code"`
	}
	if err := s.db.Select(ctx, &members, `SELECT d.code FROM device_zones dz JOIN devices d ON d.id = dz.device_id
		JOIN zones z ON z.id = dz.zone_id WHERE z.site_id = ? AND z.code = ? AND NOT d.disabled`, s.siteID, zone); err != nil {
		return fmt.Errorf("fleet: zone members: %w", err)
	}
	keys := make([]dzKey, 0, len(members))
	for _, m := range members {
		info, err := s.deviceInfo(ctx, m.Code)
		if err != nil {
			return err
		}
		keys = append(keys, dzKey{info.id, info.zones[zone]})
	}
	// Acknowledgements only grow, so devices found caught up stay so: a
	// cursor makes the whole wait O(devices), not O(devices × wakeups).
	i := 0
	for {
		s.acks.mu.Lock()
		for i < len(keys) && s.acks.acked[keys[i]] >= int64(seq) {
			i++
		}
		changed := s.acks.changed
		s.acks.mu.Unlock()
		if i == len(keys) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}
