package reader

import (
	"cmp"
	"slices"

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
	if c := cmp.Compare(a.n, b.n); c != 0 {
		return c
	}
	return slices.Compare(a.b[:], b.b[:])
}

func (w *whitelist) record(e proto.Entry) record {
	u, _ := parseUID(e.Card) // entries are validated on receipt
	i := slices.Index(w.scheds, e.Sched)
	if i < 0 {
		w.scheds = append(w.scheds, e.Sched)
		i = len(w.scheds) - 1
	}
	return record{card: u, blocked: e.Blocked, sched: uint16(i), no: e.No, from: e.From, until: e.Until}
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
}

func newBuilder(capacity int) *builder {
	return &builder{w: newWhitelist(), recs: make([]record, 0, capacity)}
}

func (b *builder) add(es []proto.Entry) {
	for _, e := range es {
		b.recs = append(b.recs, b.w.record(e))
	}
}

// done sorts the records (the server mostly sends them sorted: then only
// checked) and keeps the last of any card given twice.
func (b *builder) done() *whitelist {
	if !slices.IsSortedFunc(b.recs, func(x, y record) int { return cmpUID(x.card, y.card) }) {
		slices.SortStableFunc(b.recs, func(x, y record) int { return cmpUID(x.card, y.card) })
	}
	out := b.recs[:0]
	for i, r := range b.recs {
		if i+1 < len(b.recs) && b.recs[i+1].card == r.card {
			continue
		}
		out = append(out, r)
	}
	b.w.base, b.w.n = slices.Clip(out), len(out)
	return b.w
}
