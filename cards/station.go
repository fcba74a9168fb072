package cards

import (
	"context"
	"errors"
	"sync"
	"time"

	"onecard/devices"
)

// Station is the desk's card encoder as the screens see it: whether it is
// connected, what firmware it runs and which card lies on it. The device
// session (see Attach) polls the antenna; operations on the encoder take
// turns with the polling.
type Station struct {
	mu     sync.Mutex // guards status and port
	op     sync.Mutex // one operation on the device at a time
	enc    *Encoder
	status StationStatus
	port   func() devices.PortState
}

// StationStatus is a snapshot for the desk's encoder panel.
type StationStatus struct {
	Connected bool      `json:"connected"`
	Port      string    `json:"port"`
	Firmware  string    `json:"firmware,omitempty"`
	Since     time.Time `json:"since"`
	Error     string    `json:"error,omitempty"`
	// Card is the card on the antenna, nil when there is none.
	Card      *Card     `json:"card,omitempty"`
	CheckedAt time.Time `json:"checked_at"`
}

// NewStation returns a station for the encoder on port (shown on the
// desk), not yet connected.
func NewStation(port string) *Station {
	return &Station{status: StationStatus{Port: port, Since: time.Now().UTC()}}
}

// WatchPort lets the panel say why a port that never opened is down (the
// adapter is unplugged, the path is wrong).
func (s *Station) WatchPort(state func() devices.PortState) {
	s.mu.Lock()
	s.port = state
	s.mu.Unlock()
}

// Status returns the latest snapshot.
func (s *Station) Status() StationStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	if !st.Connected && s.port != nil {
		if ps := s.port(); ps.Err != "" {
			st.Error, st.Since = ps.Err, ps.Since
		}
	}
	if st.Card != nil {
		c := *st.Card
		st.Card = &c
	}
	return st
}

// ErrNotConnected is returned by Do while no encoder is attached.
var ErrNotConnected = errors.New("cards: the card encoder is not connected")

// Attach makes enc the station's encoder (a device session began).
func (s *Station) Attach(enc *Encoder, firmware string) {
	s.op.Lock()
	s.enc = enc
	s.op.Unlock()
	s.mu.Lock()
	s.status = StationStatus{Port: s.status.Port, Connected: true, Firmware: firmware, Since: time.Now().UTC()}
	s.mu.Unlock()
}

// Detach records that the device session ended with err.
func (s *Station) Detach(err error) {
	s.op.Lock()
	s.enc = nil
	s.op.Unlock()
	s.mu.Lock()
	s.status = StationStatus{Port: s.status.Port, Since: time.Now().UTC()}
	if err != nil && !errors.Is(err, context.Canceled) {
		s.status.Error = err.Error()
	}
	s.mu.Unlock()
}

// Do runs fn with the encoder, alone.
func (s *Station) Do(ctx context.Context, fn func(*Encoder) error) error {
	s.op.Lock()
	defer s.op.Unlock()
	if s.enc == nil {
		return ErrNotConnected
	}
	return fn(s.enc)
}

// Poll reads the antenna once and records what is there. An error means
// the device itself failed (no card is not an error).
func (s *Station) Poll(ctx context.Context) error {
	var card *Card
	err := s.Do(ctx, func(e *Encoder) error {
		c, err := e.Read(ctx)
		if err != nil {
			if isNoCard(err) {
				return nil
			}
			if isCardTrouble(err) {
				// The card moved while being read: say nothing about it.
				return nil
			}
			return err
		}
		card = &c
		return nil
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.status.Card = card
		s.status.CheckedAt = time.Now().UTC()
	}
	return err
}
