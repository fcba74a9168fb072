package kiosk

import (
	"bytes"
	"sync"
)

// pages keeps rendered bills pages, so a kiosk asking again for a page
// whose account has not changed gets it without running the template
// (a reflective walk that cost more than the rest of the request). What
// differs between two requests for the same page, the form's one-time key
// and the session's CSRF token, is rendered as a hole and filled in each
// time.
type pages struct {
	mu sync.Mutex
	m  map[pageKey]page
}

// pageKey is what a bills page is made of besides its account.
type pageKey struct {
	unit, lang   string
	paperOut, qr bool
}

// page is a rendered page cut at its holes: parts[0], hole[0], parts[1], …
type page struct {
	stamp uint64 // the account reading it shows
	parts [][]byte
	holes []int // index into the fill values
}

// Hole markers: letters and digits only, so every escaping context leaves
// them as they are; random per process, so no owner's text can hold them.
var holeMarks = [...]string{"h" + randomHex(12), "h" + randomHex(12)}

const maxPages = 1024

func (p *pages) get(k pageKey, stamp uint64) (page, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pg, ok := p.m[k]
	return pg, ok && pg.stamp == stamp
}

func (p *pages) put(k pageKey, pg page) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil || len(p.m) >= maxPages {
		p.m = map[pageKey]page{}
	}
	p.m[k] = pg
}

// cut splits a page rendered with holeMarks in place of the fill values.
func cut(body []byte, stamp uint64) page {
	pg := page{stamp: stamp}
	for {
		at, which := -1, -1
		for i, m := range holeMarks {
			if j := bytes.Index(body, []byte(m)); j >= 0 && (at < 0 || j < at) {
				at, which = j, i
			}
		}
		if at < 0 {
			pg.parts = append(pg.parts, body)
			return pg
		}
		pg.parts = append(pg.parts, body[:at])
		pg.holes = append(pg.holes, which)
		body = body[at+len(holeMarks[which]):]
	}
}

// fill writes the page with its holes filled by values.
func (pg page) fill(values [len(holeMarks)]string) []byte {
	n := 0
	for _, p := range pg.parts {
		n += len(p)
	}
	out := make([]byte, 0, n+len(pg.holes)*32)
	for i, p := range pg.parts {
		out = append(out, p...)
		if i < len(pg.holes) {
			out = append(out, values[pg.holes[i]]...)
		}
	}
	return out
}
