package cards

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"onecard/devices"
)

// DefaultSector holds the credential unless configured otherwise.
const DefaultSector = 1

// issuedAccess are the access bytes of an issued card's sector: data read
// with key A (readers) or B, written with B (the desk); the trailer written
// with key B only, key B never readable. 78 77 88.
var issuedAccess = AccessBytes([3]DataAccess{DataReadABWrite, DataReadABWrite, DataReadABWrite}, TrailerKeyB)

// State is what the encoder found on a card.
type State string

// The states of a card on the encoder.
const (
	// Blank: transport keys, empty data blocks.
	Blank State = "blank"
	// Partial: transport keys but some data: an issue or wipe that was
	// interrupted. Issue or Wipe completes it.
	Partial State = "partial"
	// Encoded: this site's keys; the credential is in Read's result.
	Encoded State = "encoded"
	// Foreign: neither this site's keys nor transport keys open it.
	Foreign State = "foreign"
)

// Encoder issues, reads and wipes cards on a MIFARE reader/writer. Every
// operation is safe to repeat: after a lifted card or a power cut, running
// it again completes the job or reports exactly what is on the card.
type Encoder struct {
	dev    devices.Mifare
	keys   Keys
	sector int
}

// NewEncoder returns an encoder writing the credential in sector.
func NewEncoder(dev devices.Mifare, keys Keys, sector int) (*Encoder, error) {
	if sector < 1 || sector > 15 {
		return nil, fmt.Errorf("cards: sector %d: use 1–15 (sector 0 holds the manufacturer block)", sector)
	}
	return &Encoder{dev: dev, keys: keys, sector: sector}, nil
}

func (e *Encoder) block(i int) byte { return byte(e.sector*4 + i) }

// UID is a card's UID; it prints and marshals as upper-case hex.
type UID []byte

func (u UID) String() string { return strings.ToUpper(hex.EncodeToString(u)) }

// MarshalText writes the hex form.
func (u UID) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

// Card is what Read found.
type Card struct {
	UID        UID         `json:"uid"`
	State      State       `json:"state"`
	Credential *Credential `json:"credential,omitempty"` // Encoded only (also when the MAC fails)
	MACValid   bool        `json:"mac_valid"`
	// Problem says why an encoded card is not valid (bad MAC, unknown layout).
	Problem string `json:"problem,omitempty"`
}

// open selects the card and authenticates its sector with the first key
// that works: this site's (key B for writing, key A for reading) or the
// transport key A. A failed key drops the card, so each try selects anew.
func (e *Encoder) open(ctx context.Context, forWrite bool) (uid []byte, state State, err error) {
	uid, err = e.dev.Select(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("select card: %w", err)
	}
	keyA, keyB := DiversifyKeys(e.keys.Master, uid, e.sector)
	key, useB := keyA, false
	if forWrite {
		key, useB = keyB, true
	}
	err = e.dev.Auth(ctx, e.block(3), useB, key, uid)
	if err == nil {
		return uid, Encoded, nil
	}
	if !errors.Is(err, devices.ErrAuth) {
		return uid, "", fmt.Errorf("authenticate with the site key: %w", err)
	}
	again, err := e.dev.Select(ctx)
	if err != nil {
		return uid, "", fmt.Errorf("select card again: %w", err)
	}
	if string(again) != string(uid) {
		return uid, "", fmt.Errorf("another card (%X) took the place of %X", again, uid)
	}
	err = e.dev.Auth(ctx, e.block(3), false, TransportKey, uid)
	if err == nil {
		return uid, Blank, nil
	}
	if errors.Is(err, devices.ErrAuth) {
		return uid, Foreign, nil
	}
	return uid, "", fmt.Errorf("authenticate with the transport key: %w", err)
}

func (e *Encoder) readData(ctx context.Context) ([3][16]byte, error) {
	var b [3][16]byte
	for i := range b {
		var err error
		if b[i], err = e.dev.ReadBlock(ctx, e.block(i)); err != nil {
			return b, fmt.Errorf("read block %d: %w", e.block(i), err)
		}
	}
	return b, nil
}

func (e *Encoder) writeData(ctx context.Context, b [3][16]byte) error {
	for i := range b {
		if err := e.dev.WriteBlock(ctx, e.block(i), b[i]); err != nil {
			return fmt.Errorf("write block %d: %w", e.block(i), err)
		}
	}
	return nil
}

// writeTrailer writes t, validating its access bits first (Trailer.Block
// refuses malformed ones): a malformed trailer would ruin the sector.
func (e *Encoder) writeTrailer(ctx context.Context, t Trailer) error {
	b, err := t.Block()
	if err != nil {
		return err
	}
	if err := e.dev.WriteBlock(ctx, e.block(3), b); err != nil {
		return fmt.Errorf("write trailer block %d: %w", e.block(3), err)
	}
	return nil
}

func isZero(b [3][16]byte) bool { return b == [3][16]byte{} }

// Read reports the card on the antenna: its UID, its state and, when it
// is encoded, the credential and whether its MAC holds.
func (e *Encoder) Read(ctx context.Context) (Card, error) {
	defer e.dev.Release(ctx)
	uid, state, err := e.open(ctx, false)
	if err != nil {
		return Card{UID: uid}, fmt.Errorf("cards: read: %w", err)
	}
	c := Card{UID: uid, State: state}
	if state == Foreign {
		return c, nil
	}
	data, err := e.readData(ctx)
	if err != nil {
		return c, fmt.Errorf("cards: read: %w", err)
	}
	if state == Blank {
		if !isZero(data) {
			c.State = Partial
		}
		return c, nil
	}
	cred, err := Decode(data, uid, e.keys.MAC)
	switch {
	case err == nil:
		c.Credential, c.MACValid = &cred, true
	case errors.Is(err, ErrMAC):
		c.Credential, c.Problem = &cred, "MAC does not match: altered or forged"
	default:
		c.Problem = err.Error()
	}
	return c, nil
}

// ErrCardEncoded is returned by Issue for a card that already carries a
// different credential: wipe it first.
var ErrCardEncoded = errors.New("cards: the card already carries another credential; wipe it first")

// ErrForeignCard is returned for a card whose keys are neither this site's
// nor the transport keys.
var ErrForeignCard = errors.New("cards: the card's keys are unknown (not blank, not this site's)")

// Issue writes cred on the blank card on the antenna, replaces the
// transport keys with the card's own, then reads it back with the
// readers' key and verifies it. check, if given, is asked about the UID
// before anything is written (a card registered to someone else is
// refused there). Repeating Issue after an interruption completes it.
func (e *Encoder) Issue(ctx context.Context, cred Credential, check func(uid []byte) error) ([]byte, error) {
	cred.Version = FormatVersion
	uid, err := e.issue(ctx, cred, check)
	if err != nil {
		return uid, fmt.Errorf("cards: issue: %w", err)
	}
	return uid, nil
}

func (e *Encoder) issue(ctx context.Context, cred Credential, check func([]byte) error) ([]byte, error) {
	defer e.dev.Release(ctx)
	uid, state, err := e.open(ctx, true)
	if err != nil {
		return uid, err
	}
	if check != nil {
		if err := check(uid); err != nil {
			return uid, err
		}
	}
	want, err := Encode(cred, uid, e.keys.MAC)
	if err != nil {
		return uid, err
	}
	keyA, keyB := DiversifyKeys(e.keys.Master, uid, e.sector)
	switch state {
	case Foreign:
		return uid, ErrForeignCard
	case Encoded:
		// Opened with this card's key B: the trailer was written. Data
		// blocks are written before the trailer, so they hold a
		// credential; if it is ours the job is done but for the check.
		have, err := e.readData(ctx)
		if err != nil {
			return uid, err
		}
		if have != want {
			return uid, ErrCardEncoded
		}
	case Blank:
		// Data first, trailer last: until the trailer is written the card
		// keeps its transport keys and a repeat starts over.
		if err := e.writeData(ctx, want); err != nil {
			return uid, err
		}
		if err := e.writeTrailer(ctx, Trailer{KeyA: keyA, Access: issuedAccess, GPB: 0x69, KeyB: keyB}); err != nil {
			return uid, err
		}
	}
	return uid, e.verify(ctx, uid, want, keyA)
}

// verify reads the credential back as a gate reader would, with key A.
func (e *Encoder) verify(ctx context.Context, uid []byte, want [3][16]byte, keyA [6]byte) error {
	again, err := e.dev.Select(ctx)
	if err != nil {
		return fmt.Errorf("verify: select card: %w", err)
	}
	if string(again) != string(uid) {
		return fmt.Errorf("verify: another card (%X) took the place of %X", again, uid)
	}
	if err := e.dev.Auth(ctx, e.block(3), false, keyA, uid); err != nil {
		return fmt.Errorf("verify: authenticate with the card's key A: %w", err)
	}
	got, err := e.readData(ctx)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if got != want {
		return errors.New("verify: the card reads back differently from what was written")
	}
	return nil
}

// Wipe returns the card on the antenna to its transport state (empty data
// blocks, transport keys), as for a returned card. Repeating it after an
// interruption completes it; a blank card is left as it is.
func (e *Encoder) Wipe(ctx context.Context) ([]byte, error) {
	uid, err := e.wipe(ctx)
	if err != nil {
		return uid, fmt.Errorf("cards: wipe: %w", err)
	}
	return uid, nil
}

func (e *Encoder) wipe(ctx context.Context) ([]byte, error) {
	defer e.dev.Release(ctx)
	uid, state, err := e.open(ctx, true)
	if err != nil {
		return uid, err
	}
	if state == Foreign {
		return uid, ErrForeignCard
	}
	data, err := e.readData(ctx)
	if err != nil {
		return uid, err
	}
	if !isZero(data) {
		if err := e.writeData(ctx, [3][16]byte{}); err != nil {
			return uid, err
		}
	}
	if state == Encoded {
		// Trailer last: an interrupted wipe leaves the card's own keys,
		// which open it again for the repeat.
		if err := e.writeTrailer(ctx, TransportTrailer); err != nil {
			return uid, err
		}
	}
	return uid, nil
}
