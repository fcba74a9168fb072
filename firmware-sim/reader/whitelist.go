package reader

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"onecard/fleet/proto"
)

// whitelist is one zone's cards as the reader keeps them, the way reader
// firmware keeps them in flash: a sorted array of fixed-size records,
// searched by halving, plus the changes made since it was last merged. It
// holds no pointers, so a thousand simulated readers holding 50,000 cards
// each fit in memory and cost the garbage collector nothing.
type whitelist struct {
	base   []record
	delta  map[uid]change // changes not yet merged into base
	n      int            // entries, counting delta
	scheds []string       // schedule names; records hold an index
}

// uid is a card UID of 4, 7 or 10 bytes, stored with its length.
type uid struct {
	b [10]byte
	n uint8
}

type record struct {
	card    uid
	blocked bool
	sched   uint16
	no      uint64
	from    int64
	until   int64
}

type change struct {
	del bool
	r   record
}

// mergeAt is how many changes are kept apart before they are merged.
const mergeAt = 256

func newWhitelist() *whitelist { return &whitelist{delta: map[uid]change{}} }

func parseUID(card string) (uid, bool) {
	var u uid
	if len(card) > 2*len(u.b) || len(card)%2 != 0 {
		return u, false
	}
	for i := 0; i < len(card); i += 2 {
		hi, ok1 := fromHex(card[i])
		lo, ok2 := fromHex(card[i+1])
		if !ok1 || !ok2 {
			return uid{}, false
		}
		u.b[i/2] = hi<<4 | lo
	}
	u.n = uint8(len(card) / 2)
	return u, true
}

func fromHex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

func (u uid) String() string {
	const digits = "0123456789ABCDEF"
	b := make([]byte, 2*u.n)
	for i, c := range u.b[:u.n] {
		b[2*i], b[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(b)
}

func cmpUID(a, b uid) int {
	if a.n != b.n {
		return cmp.Compare(a.n, b.n)
	}
	return bytes.Compare(a.b[:a.n], b.b[:b.n])
}

func (w *whitelist) record(e proto.Entry) record {
	u, _ := parseUID(e.Card) // entries are validated on receipt
	return record{card: u, blocked: e.Blocked, sched: w.sched(e.Sched), no: e.No, from: e.From, until: e.Until}
}

// sched is the index of a schedule name, added if new (copied: name may
// be part of a whole message).
func (w *whitelist) sched(name string) uint16 {
	i := slices.Index(w.scheds, name)
	if i < 0 {
		w.scheds = append(w.scheds, strings.Clone(name))
		i = len(w.scheds) - 1
	}
	return uint16(i)
}

// scanRecord reads one snapshot row (card,no,from,until,sched,blocked;
// docs/mqtt.md) from the start of rows straight into a record, checking it
// as proto.ParseRow does, and returns the rest after it. This is the
// reader's hot path when a large snapshot arrives: one pass, nothing
// allocated.
func (w *whitelist) scanRecord(rows string) (record, string, bool) {
	var r record
	i := strings.IndexByte(rows, ',')
	if i != 8 && i != 14 && i != 20 {
		return r, rows, false
	}
	for k := 0; k < i; k += 2 {
		hi, lo := upperHex(rows[k]), upperHex(rows[k+1])
		if hi > 15 || lo > 15 {
			return r, rows, false
		}
		r.card.b[k/2] = hi<<4 | lo
	}
	r.card.n = uint8(i / 2)
	rows = rows[i+1:]
	var no, from, until uint64
	var ok bool
	if no, rows, ok = proto.ScanUint(rows); !ok || no == 0 {
		return r, rows, false
	}
	if from, rows, ok = proto.ScanUint(rows); !ok || from > math.MaxInt64 {
		return r, rows, false
	}
	if until, rows, ok = proto.ScanUint(rows); !ok || until > math.MaxInt64 || until <= from {
		return r, rows, false
	}
	r.no, r.from, r.until = no, int64(from), int64(until)
	i = strings.IndexByte(rows, ',')
	if i < 0 || !proto.ValidID(rows[:i]) || i+1 >= len(rows) {
		return r, rows, false
	}
	r.sched = w.sched(rows[:i])
	switch rows[i+1] {
	case '1':
		r.blocked = true
	case '0':
	default:
		return r, rows, false
	}
	return r, rows[i+2:], true
}

// upperHex is the value of an upper-case hex digit, or 255.
func upperHex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 255
}

func (w *whitelist) entry(r record) proto.Entry {
	return proto.Entry{Card: r.card.String(), No: r.no, From: r.from, Until: r.until, Sched: w.scheds[r.sched], Blocked: r.blocked}
}

func (w *whitelist) find(u uid) (record, bool) {
	if c, ok := w.delta[u]; ok {
		return c.r, !c.del
	}
	i, ok := slices.BinarySearchFunc(w.base, u, func(r record, u uid) int { return cmpUID(r.card, u) })
	if !ok {
		return record{}, false
	}
	return w.base[i], true
}

// get returns a card's entry.
func (w *whitelist) get(card string) (proto.Entry, bool) {
	u, ok := parseUID(card)
	if !ok {
		return proto.Entry{}, false
	}
	r, ok := w.find(u)
	if !ok {
		return proto.Entry{}, false
	}
	return w.entry(r), true
}

// put adds or replaces an entry.
func (w *whitelist) put(e proto.Entry) {
	r := w.record(e)
	if _, had := w.find(r.card); !had {
		w.n++
	}
	w.delta[r.card] = change{r: r}
	w.maybeMerge()
}

// del removes a card.
func (w *whitelist) del(card string) {
	u, ok := parseUID(card)
	if !ok {
		return
	}
	if _, had := w.find(u); had {
		w.n--
	}
	w.delta[u] = change{del: true, r: record{card: u}}
	w.maybeMerge()
}

func (w *whitelist) len() int { return w.n }

func (w *whitelist) maybeMerge() {
	if len(w.delta) < mergeAt {
		return
	}
	merged := make([]record, 0, w.n)
	for _, r := range w.base {
		if _, changed := w.delta[r.card]; !changed {
			merged = append(merged, r)
		}
	}
	for _, c := range w.delta {
		if !c.del {
			merged = append(merged, c.r)
		}
	}
	slices.SortFunc(merged, func(a, b record) int { return cmpUID(a.card, b.card) })
	w.base, w.delta = merged, map[uid]change{}
}

// entries returns every entry, in card order.
func (w *whitelist) entries() []proto.Entry {
	w.maybeMerge()
	out := make([]proto.Entry, 0, w.n)
	for _, r := range w.base {
		if _, changed := w.delta[r.card]; !changed {
			out = append(out, w.entry(r))
		}
	}
	for _, c := range w.delta {
		if !c.del {
			out = append(out, w.entry(c.r))
		}
	}
	slices.SortFunc(out, func(a, b proto.Entry) int { return cmp.Compare(a.Card, b.Card) })
	return out
}

// builder collects a snapshot's entries, in any order, into a whitelist.
type builder struct {
	w    *whitelist
	recs []record
	// ordered holds while each record came after the one before, in card
	// order: as the server sends them, in the usual case. Checked as the
	// chunks arrive, it spares done a pass over the whole list after the
	// last one (the time of which the reader waits for).
	ordered bool
}

func newBuilder(capacity int) *builder {
	return &builder{w: newWhitelist(), recs: make([]record, 0, capacity), ordered: true}
}

// keep appends a record, noting whether the order still holds.
func (b *builder) keep(r record) {
	if b.ordered && len(b.recs) > 0 && cmpUID(b.recs[len(b.recs)-1].card, r.card) >= 0 {
		b.ordered = false
	}
	b.recs = append(b.recs, r)
}

func (b *builder) add(es []proto.Entry) {
	for _, e := range es {
		b.keep(b.w.record(e))
	}
}

// addRows reads a snapshot chunk's n rows; a bad row, or a count other
// than n, adds none of them.
func (b *builder) addRows(rows string, n int) error {
	start := len(b.recs)
	fail := func(format string, args ...any) error {
		b.recs = b.recs[:start]
		return fmt.Errorf("%w: "+format, append([]any{proto.ErrInvalid}, args...)...)
	}
	if n == 0 {
		return nil
	}
	for {
		if len(b.recs)-start == n {
			return fail("snapshot: more than %d entries", n)
		}
		r, rest, ok := b.w.scanRecord(rows)
		if !ok {
			return fail("snapshot: row %d", len(b.recs)-start+1)
		}
		b.keep(r)
		if rest == "" {
			break
		}
		if rest[0] != '\n' {
			return fail("snapshot: row %d", len(b.recs)-start)
		}
		rows = rest[1:]
	}
	if got := len(b.recs) - start; got != n {
		return fail("snapshot: %d entries announced, %d sent", n, got)
	}
	return nil
}

// done sorts the records, unless they came in order, and keeps the last of
// any card given twice. (A failed addRows may have left ordered false for
// records it took back: that only costs the sort.)
func (b *builder) done() *whitelist {
	recs := b.recs
	if !b.ordered {
		slices.SortStableFunc(recs, func(x, y record) int { return cmpUID(x.card, y.card) })
		kept := recs[:0]
		for i, r := range recs {
			if i+1 < len(recs) && recs[i+1].card == r.card {
				continue
			}
			kept = append(kept, r)
		}
		recs = kept
	}
	b.w.base, b.w.n = slices.Clip(recs), len(recs)
	return b.w
}
