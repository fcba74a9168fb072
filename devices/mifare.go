package devices

import (
	"context"
	"errors"
)

// Errors every MIFARE driver reports, wrapped with the step that failed.
var (
	// ErrNoCard: no card answered on the antenna.
	ErrNoCard = errors.New("no card on the antenna")
	// ErrAuth: the card refused the key. The card drops out of the
	// session; Select it again before anything else.
	ErrAuth = errors.New("card refused the key")
	// ErrCardLost: the card stopped answering mid-operation (lifted).
	ErrCardLost = errors.New("card left the antenna")
	// ErrTimeout: the device did not answer in time.
	ErrTimeout = errors.New("device did not answer in time")
)

// Mifare is a MIFARE Classic reader/writer: what the card encoder needs.
// Blocks are absolute block numbers (0–63 on a 1K card).
type Mifare interface {
	// Select finds one ISO 14443-A card and returns its UID.
	Select(ctx context.Context) (uid []byte, err error)
	// Auth authenticates block's sector with key A (keyB false) or key B.
	Auth(ctx context.Context, block byte, keyB bool, key [6]byte, uid []byte) error
	// ReadBlock reads 16 bytes.
	ReadBlock(ctx context.Context, block byte) ([16]byte, error)
	// WriteBlock writes 16 bytes.
	WriteBlock(ctx context.Context, block byte, data [16]byte) error
	// Release ends the session with the selected card.
	Release(ctx context.Context) error
}
