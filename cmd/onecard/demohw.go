package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"time"

	"onecard/desk"
	lockersim "onecard/firmware-sim/locker"
	pn532sim "onecard/firmware-sim/pn532"
	"onecard/firmware-sim/reader"
	scannersim "onecard/firmware-sim/scanner"
)

// demoHardware is the demo's simulated hardware, as the desk's demo
// controls use it: a tray of cards for the encoder, and the readers.
type demoHardware struct {
	mu      sync.Mutex
	sim     *pn532sim.Sim
	cards   map[string]*pn532sim.Card
	order   []string
	readers []demoReader
	// The mail room's locker bank and the desk's barcode scanner.
	locker  *lockersim.Sim
	scanner *scannersim.Sim
}

type demoReader struct {
	id, name, kind string
	r              *reader.Reader
}

// desk returns the controls, or nil when nothing is simulated.
func (h *demoHardware) desk() desk.Demo {
	if h.sim == nil && len(h.readers) == 0 && h.locker == nil && h.scanner == nil {
		return nil
	}
	return h
}

func (h *demoHardware) place(c *pn532sim.Card) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cards == nil {
		h.cards = map[string]*pn532sim.Card{}
	}
	uid := strings.ToUpper(hex.EncodeToString(c.UID()))
	if _, ok := h.cards[uid]; !ok {
		h.cards[uid] = c
		h.order = append(h.order, uid)
	}
	h.sim.Remove()
	h.sim.Place(c)
}

func (h *demoHardware) addReader(id, name, kind string, r *reader.Reader) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.readers = append(h.readers, demoReader{id, name, kind, r})
}

// GateTerminals are the simulated gate terminals.
func (h *demoHardware) GateTerminals() [][2]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out [][2]string
	for _, r := range h.readers {
		if r.kind == "gate-terminal" {
			out = append(out, [2]string{r.id, r.name})
		}
	}
	return out
}

func (h *demoHardware) terminal(id string) (*reader.Reader, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.readers {
		if r.id == id && r.kind == "gate-terminal" {
			return r.r, nil
		}
	}
	return nil, errors.New("demo: no such gate terminal")
}

// ScanPass scans a pass code at a gate terminal.
func (h *demoHardware) ScanPass(id, code string) (bool, string, bool, error) {
	r, err := h.terminal(id)
	if err != nil {
		return false, "", false, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	v, err := r.ScanPass(ctx, code)
	return v.OK, v.Reason, v.Offline, err
}

// ReleasePass confirms a release on a gate terminal.
func (h *demoHardware) ReleasePass(id, code, mover string) error {
	r, err := h.terminal(id)
	if err != nil {
		return err
	}
	return r.ReleasePass(code, mover, "")
}

// Cards lists the demo's cards, newest first.
func (h *demoHardware) Cards() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.order))
	for i := len(h.order) - 1; i >= 0; i-- {
		out = append(out, h.order[i])
	}
	return out
}

// Place puts a card on the encoder: a new blank one when uid is empty.
func (h *demoHardware) Place(uid string) (string, error) {
	if h.sim == nil {
		return "", errors.New("demo: the encoder is not simulated")
	}
	if uid == "" {
		b := make([]byte, 4)
		rand.Read(b)
		b[0] = 0x04
		c := pn532sim.NewCard(b)
		h.place(c)
		return strings.ToUpper(hex.EncodeToString(b)), nil
	}
	h.mu.Lock()
	c, ok := h.cards[uid]
	h.mu.Unlock()
	if !ok {
		return "", errors.New("demo: no such card")
	}
	h.place(c)
	return uid, nil
}

// Readers lists the simulated readers.
func (h *demoHardware) Readers() [][2]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([][2]string, len(h.readers))
	for i, r := range h.readers {
		out[i] = [2]string{r.id, r.name}
	}
	return out
}

// Tap holds a card to a reader.
func (h *demoHardware) Tap(id, uid string) (bool, string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.readers {
		if r.id == id {
			d := r.r.Tap(uid)
			return d.Granted, d.Reason, nil
		}
	}
	return false, "", errors.New("demo: no such reader")
}

// OpenDoors are the simulated locker bank's doors standing open.
func (h *demoHardware) OpenDoors() []int {
	if h.locker == nil {
		return nil
	}
	var open []int
	for i, d := range h.locker.State().Doors {
		if d.Open {
			open = append(open, i+1)
		}
	}
	return open
}

// CloseDoor pushes a simulated locker door shut.
func (h *demoHardware) CloseDoor(n int) error {
	if h.locker == nil {
		return errors.New("no simulated locker bank")
	}
	return h.locker.Close(n)
}

// HasScanner reports whether the desk's scanner is simulated.
func (h *demoHardware) HasScanner() bool { return h.scanner != nil }

// Scan has the simulated scanner read code.
func (h *demoHardware) Scan(code string) error {
	if h.scanner == nil {
		return errors.New("no simulated scanner")
	}
	h.scanner.Scan(code)
	return nil
}
