package fleet

import "context"

// DropCache forgets every zone held in memory, as a server just started
// has not loaded them yet (for the cold snapshot of BenchmarkCatchUp).
func (s *Service) DropCache() {
	s.cache.mu.Lock()
	s.cache.zones, s.cache.bytes = nil, 0
	s.cache.mu.Unlock()
}

// LoadZoneCache loads a zone into memory, as the start does.
func (s *Service) LoadZoneCache(ctx context.Context, zone string) error {
	var id int64
	if err := s.db.Get(ctx, &id, "SELECT id FROM zones WHERE site_id = ? AND code = ?", s.siteID, zone); err != nil {
		return err
	}
	rows, err := s.loadZone(ctx, id)
	if err != nil {
		return err
	}
	s.cache.put(id, rows)
	return nil
}

// CachedZone returns a zone's rows held in memory, chunk by chunk, and
// their sequence.
func (s *Service) CachedZone(ctx context.Context, zone string) (seq int64, chunks [][]string, ok bool) {
	var id int64
	if err := s.db.Get(ctx, &id, "SELECT id FROM zones WHERE site_id = ? AND code = ?", s.siteID, zone); err != nil {
		return 0, nil, false
	}
	s.cache.mu.Lock()
	defer s.cache.mu.Unlock()
	z := s.cache.zones[id]
	if z == nil {
		return 0, nil, false
	}
	all, _ := z.sendable()
	for _, c := range all {
		var rows []string
		forEachRow(c, func(row string) { rows = append(rows, row) })
		chunks = append(chunks, rows)
	}
	return z.seq, chunks, true
}

// Subscribe is subscribe: a subscription the broker refuses by mistake is
// retried (for the benchmarks' monitors).
var Subscribe = subscribe
