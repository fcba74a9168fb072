package fleet

import (
	"context"
	"strings"
	"sync"
	"time"

	"onecard/fleet/proto"
)

// The server keeps each zone's whitelist in memory as snapshot chunks, so
// that a snapshot (a new reader, one back from a long absence, a
// supervisor's resync, a thousand readers after a power cut) is sent
// without reading the database. The chunks are loaded when the fleet
// starts and kept current by every change the server commits; the
// database stays the truth: a cached zone is used only when its sequence
// is the zone's sequence in the database, so a change made by another
// process, or one whose update was missed, means a read from the database,
// which then refills the cache.

// cacheLimit is the most bytes of rows the cache holds; zones beyond it
// are read from the database each time.
const cacheLimit = 64 << 20

// zoneRows is a zone's whitelist as of one sequence: chunks of at most
// proto.MaxSnapshotEntries rows (proto.Entry.AppendRow, joined by "\n").
// The chunks are in no particular order (a device sorts what it gets).
type zoneRows struct {
	seq    int64
	total  int
	bytes  int
	chunks []string
	counts []int
	// where is the chunk holding each card, built on the first change.
	where map[string]int
}

// add keeps a chunk read from the database.
func (z *zoneRows) add(chunk string, n int) {
	if n > 0 {
		z.chunks, z.counts = append(z.chunks, chunk), append(z.counts, n)
		z.total += n
		z.bytes += len(chunk)
	}
}

// rowCard is the card of a row (its first field).
func rowCard(row string) string {
	if i := strings.IndexByte(row, ','); i >= 0 {
		return row[:i]
	}
	return row
}

// forEachRow calls f with each row of chunk.
func forEachRow(chunk string, f func(row string)) {
	for chunk != "" {
		row, rest, _ := strings.Cut(chunk, "\n")
		f(row)
		chunk = rest
	}
}

// findRow returns the byte range of card's row in chunk, or ok false.
func findRow(chunk, card string) (start, end int, ok bool) {
	for pos := 0; pos < len(chunk); {
		nl := strings.IndexByte(chunk[pos:], '\n')
		end := len(chunk)
		if nl >= 0 {
			end = pos + nl
		}
		if rowCard(chunk[pos:end]) == card {
			return pos, end, true
		}
		pos = end + 1
	}
	return 0, 0, false
}

// cutRow removes the row at [start, end) and its separator from chunk.
func cutRow(chunk string, start, end int) string {
	switch {
	case end < len(chunk): // a row followed by another
		return chunk[:start] + chunk[end+1:]
	case start > 0: // the last row of several
		return chunk[:start-1]
	default: // the only row
		return ""
	}
}

// apply changes z by ops, in place (the caller holds the cache's lock and
// senders hold copies of the chunk list).
func (z *zoneRows) apply(ops []proto.Op) {
	if z.where == nil {
		z.where = make(map[string]int, z.total)
		for i, c := range z.chunks {
			forEachRow(c, func(row string) { z.where[rowCard(row)] = i })
		}
	}
	for _, op := range ops {
		i, had := z.where[op.Card]
		var start, end int
		if had {
			start, end, had = findRow(z.chunks[i], op.Card)
		}
		if op.Op == "del" {
			if had {
				z.chunks[i] = cutRow(z.chunks[i], start, end)
				z.counts[i]--
				z.total--
				z.bytes -= end - start
				delete(z.where, op.Card)
			}
			continue
		}
		row := string(op.Entry.AppendRow(nil))
		if had { // the card's row changes where it is
			z.chunks[i] = z.chunks[i][:start] + row + z.chunks[i][end:]
			z.bytes += len(row) - (end - start)
			continue
		}
		i = len(z.chunks) - 1
		if i < 0 || z.counts[i] >= proto.MaxSnapshotEntries {
			z.chunks, z.counts = append(z.chunks, ""), append(z.counts, 0)
			i++
		}
		if z.chunks[i] == "" {
			z.chunks[i] = row
		} else {
			z.chunks[i] += "\n" + row
		}
		z.counts[i]++
		z.total++
		z.bytes += len(row)
		z.where[op.Card] = i
	}
}

// sendable returns the chunks to send: a copy of the list without empty
// chunks (rows removed by changes), or one empty chunk for an empty zone.
func (z *zoneRows) sendable() ([]string, []int) {
	chunks := make([]string, 0, len(z.chunks))
	counts := make([]int, 0, len(z.chunks))
	for i, n := range z.counts {
		if n > 0 {
			chunks, counts = append(chunks, z.chunks[i]), append(counts, n)
		}
	}
	if len(chunks) == 0 {
		return []string{""}, []int{0}
	}
	return chunks, counts
}

type snapCache struct {
	mu    sync.Mutex
	zones map[int64]*zoneRows
	bytes int
}

// get returns the chunks of zone as of seq, if held.
func (c *snapCache) get(zoneID, seq int64) (chunks []string, counts []int, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	z := c.zones[zoneID]
	if z == nil || z.seq != seq {
		return nil, nil, false
	}
	chunks, counts = z.sendable()
	return chunks, counts, true
}

// put keeps z as zone's rows unless the cache holds a later sequence or is
// full.
func (c *snapCache) put(zoneID int64, z *zoneRows) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.zones[zoneID]
	if old != nil && old.seq >= z.seq {
		return
	}
	oldBytes := 0
	if old != nil {
		oldBytes = old.bytes
	}
	if c.bytes-oldBytes+z.bytes > cacheLimit {
		return
	}
	if c.zones == nil {
		c.zones = map[int64]*zoneRows{}
	}
	c.zones[zoneID] = z
	c.bytes += z.bytes - oldBytes
}

// change applies a committed change (the zone's sequence seq) to the
// zone's rows if they are those of seq-1; otherwise (changes committed
// out of order, a change missed) it forgets them, to be read again.
func (c *snapCache) change(zoneID, seq int64, ops []proto.Op) {
	c.mu.Lock()
	defer c.mu.Unlock()
	z := c.zones[zoneID]
	if z == nil {
		return
	}
	if z.seq != seq-1 {
		delete(c.zones, zoneID)
		c.bytes -= z.bytes
		return
	}
	before := z.bytes
	z.apply(ops)
	z.seq = seq
	c.bytes += z.bytes - before
}

// warmCache loads every zone of the site into the cache, one consistent
// read per zone, so that the first snapshots after a start are sent from
// memory too. A snapshot needed before its zone is loaded reads the
// database itself (and fills the cache).
func (s *Service) warmCache(ctx context.Context) {
	var zones []struct {
		ID  int64 `db:"id"`
		Seq int64 `db:"seq"`
	}
	if err := s.db.Select(ctx, &zones, "SELECT id, seq FROM zones WHERE site_id = ? ORDER BY id", s.siteID); err != nil {
		if ctx.Err() == nil {
			s.log.Warn("fleet: load whitelists into memory", "err", err)
		}
		return
	}
	start, entries := time.Now(), 0
	for _, z := range zones {
		if _, _, ok := s.cache.get(z.ID, z.Seq); ok {
			continue // a snapshot got there first
		}
		rows, err := s.loadZone(ctx, z.ID)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("fleet: load a whitelist into memory", "zone_id", z.ID, "err", err)
			}
			return
		}
		entries += rows.total // before put: from then on the rows are the cache's
		s.cache.put(z.ID, rows)
	}
	s.warmed.Store(true)
	s.log.Info("fleet: whitelists loaded into memory", "zones", len(zones), "entries", entries, "took", time.Since(start).Round(time.Millisecond))
}

// loadZone reads a zone's rows from one consistent view of the database.
func (s *Service) loadZone(ctx context.Context, zoneID int64) (*zoneRows, error) {
	view, err := s.readView(ctx)
	if err != nil {
		return nil, err
	}
	defer view.close()
	rows := &zoneRows{}
	var total int
	if err := view.get(ctx, &rows.seq, "SELECT seq FROM zones WHERE id = ?", zoneID); err != nil {
		return nil, err
	}
	if err := view.get(ctx, &total, "SELECT COUNT(*) FROM wl_entries WHERE zone_id = ?", zoneID); err != nil {
		return nil, err
	}
	err = readChunks(ctx, view, zoneID, total, func(chunk string, n int) bool {
		rows.add(chunk, n)
		return true
	})
	return rows, err
}

// Warmed reports whether every zone's whitelist has been loaded into
// memory since Run started.
func (s *Service) Warmed() bool { return s.warmed.Load() }
