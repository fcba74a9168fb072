package pn532

import (
	"context"
	"fmt"
	"time"
)

// MIFARE Classic commands, carried by InDataExchange.
const (
	mfAuthA byte = 0x60
	mfAuthB byte = 0x61
	mfRead  byte = 0x30
	mfWrite byte = 0xA0
)

// selectWait bounds how long Select waits for the PN532 to report a card
// or none, so a desk polling with Select stays responsive.
const selectWait = 300 * time.Millisecond

// Select finds one card and makes it the card Auth, ReadBlock and
// WriteBlock talk to. It returns the card's UID, or an error wrapping
// devices.ErrNoCard.
func (d *Dev) Select(ctx context.Context) ([]byte, error) {
	t, err := d.ListTarget(ctx, min(selectWait, d.opts.Timeout))
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), t.UID...), nil
}

// Auth authenticates the sector of block with key A or, if keyB, key B,
// for the selected card; uid is the card's UID (nil: the UID Select
// returned), of which the last 4 bytes go into the authentication.
//
// A card that refuses the key returns an error wrapping devices.ErrAuth
// and halts, as a MIFARE Classic card does after any error: after a failed
// Auth, ReadBlock or WriteBlock the driver forgets the card and the next
// card operation fails with ErrNotSelected until Select finds it again.
// To try another key, Select, then Auth again.
func (d *Dev) Auth(ctx context.Context, block byte, keyB bool, key [6]byte, uid []byte) error {
	cmd, letter := mfAuthA, "A"
	if keyB {
		cmd, letter = mfAuthB, "B"
	}
	step := fmt.Sprintf("authenticate block %d with key %s", block, letter)
	tg, sel, err := d.card(step)
	if err != nil {
		return err
	}
	if uid == nil {
		uid = sel
	}
	if len(uid) < 4 {
		return &Error{Step: step, Err: fmt.Errorf("UID % X is shorter than 4 bytes", uid)}
	}
	data := append([]byte{cmd, block}, key[:]...)
	data = append(data, uid[len(uid)-4:]...)
	_, err = d.exchange(ctx, step, tg, data)
	d.after(err)
	return err
}

// ReadBlock reads a block of the selected card, whose sector must be
// authenticated.
func (d *Dev) ReadBlock(ctx context.Context, block byte) ([16]byte, error) {
	var out [16]byte
	step := fmt.Sprintf("read block %d", block)
	tg, _, err := d.card(step)
	if err != nil {
		return out, err
	}
	data, err := d.exchange(ctx, step, tg, []byte{mfRead, block})
	if err == nil && len(data) != 16 {
		err = &Error{Step: step, Err: fmt.Errorf("%w: %d bytes, want 16", ErrBadResponse, len(data))}
	}
	d.after(err)
	if err != nil {
		return out, err
	}
	copy(out[:], data)
	return out, nil
}

// WriteBlock writes a block of the selected card, whose sector must be
// authenticated. It does not check what it writes: validate a sector
// trailer's access bits before writing it, or the sector is lost for good.
func (d *Dev) WriteBlock(ctx context.Context, block byte, data [16]byte) error {
	step := fmt.Sprintf("write block %d", block)
	tg, _, err := d.card(step)
	if err != nil {
		return err
	}
	_, err = d.exchange(ctx, step, tg, append([]byte{mfWrite, block}, data[:]...))
	d.after(err)
	return err
}

// Release ends the session with the selected card (InRelease). With no
// card listed it does nothing.
func (d *Dev) Release(ctx context.Context) error {
	d.mu.Lock()
	tg, listed := d.tg, d.listed
	d.mu.Unlock()
	if !listed {
		return nil
	}
	return d.ReleaseTarget(ctx, tg)
}

// card returns the selected card's target number and UID, or
// ErrNotSelected.
func (d *Dev) card(step string) (byte, []byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.active {
		return 0, nil, &Error{Step: step, Err: ErrNotSelected}
	}
	return d.tg, d.uid, nil
}

// after ends the card session when a card operation failed: the card has
// halted (MIFARE Classic does on any error), gone, or is in a state the
// driver cannot know. The PN532 still lists it, for Release.
func (d *Dev) after(err error) {
	if err != nil {
		d.forget(true)
	}
}
