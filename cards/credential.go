package cards

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// FormatVersion is the credential layout version written on cards.
const FormatVersion = 1

// magic opens the first credential block: "OC", for onecard.
var magic = [2]byte{'O', 'C'}

// Type is a card type.
type Type byte

// The card types (SOP §1: owners, household members, tenants, staff and
// contractors on temporary cards).
const (
	Owner     Type = 1
	Family    Type = 2
	Tenant    Type = 3
	Staff     Type = 4
	Temporary Type = 5
)

// Valid reports whether t is a known type.
func (t Type) Valid() bool { return t >= Owner && t <= Temporary }

// MarshalText writes the type's name.
func (t Type) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

func (t Type) String() string {
	switch t {
	case Owner:
		return "owner"
	case Family:
		return "family"
	case Tenant:
		return "tenant"
	case Staff:
		return "staff"
	case Temporary:
		return "temporary"
	}
	return fmt.Sprintf("type(%d)", byte(t))
}

// Credential is what a card carries. Times are whole seconds, UTC.
type Credential struct {
	Version    byte      `json:"version"`
	SiteID     uint32    `json:"site_id"`
	Number     uint64    `json:"number"`
	Type       Type      `json:"type"`
	ValidFrom  time.Time `json:"valid_from"`
	ValidUntil time.Time `json:"valid_until"`
}

// Errors decoding a credential.
var (
	ErrNotCredential = errors.New("cards: not a onecard credential")
	ErrVersion       = errors.New("cards: unknown credential version")
	ErrMAC           = errors.New("cards: credential MAC does not match")
)

// macSize is the truncated HMAC-SHA256 length stored on the card.
const macSize = 16

func (c Credential) validate() error {
	switch {
	case !c.Type.Valid():
		return fmt.Errorf("cards: card type %d unknown", c.Type)
	case c.Number == 0:
		return errors.New("cards: card number is zero")
	case c.ValidFrom.Unix() < 0 || c.ValidUntil.Unix() > 1<<32-1:
		return errors.New("cards: validity outside 1970–2106")
	case !c.ValidUntil.After(c.ValidFrom):
		return errors.New("cards: card valid until is not after valid from")
	}
	return nil
}

// Encode lays the credential out in the sector's three data blocks:
//
//	block 0: "OC" · version · type · site id (4, BE) · card number (8, BE)
//	block 1: valid from (4, Unix s, BE) · valid until (4) · reserved zeros (8)
//	block 2: MAC = HMAC-SHA256(mac key, "onecard/card/v1" · UID · block 0 · block 1), first 16 bytes
func Encode(c Credential, uid []byte, macKey []byte) ([3][16]byte, error) {
	var b [3][16]byte
	if err := c.validate(); err != nil {
		return b, err
	}
	if len(uid) != 4 && len(uid) != 7 && len(uid) != 10 {
		return b, fmt.Errorf("cards: UID of %d bytes", len(uid))
	}
	copy(b[0][0:2], magic[:])
	b[0][2] = FormatVersion
	b[0][3] = byte(c.Type)
	binary.BigEndian.PutUint32(b[0][4:8], c.SiteID)
	binary.BigEndian.PutUint64(b[0][8:16], c.Number)
	binary.BigEndian.PutUint32(b[1][0:4], uint32(c.ValidFrom.Unix()))
	binary.BigEndian.PutUint32(b[1][4:8], uint32(c.ValidUntil.Unix()))
	mac := credentialMAC(macKey, uid, b[0], b[1])
	copy(b[2][:], mac)
	return b, nil
}

// Decode reads a credential from its three blocks. A layout it does not
// know is ErrNotCredential or ErrVersion; a MAC that does not match is
// ErrMAC, with the decoded credential still returned so the desk can show
// what the card claims.
func Decode(b [3][16]byte, uid []byte, macKey []byte) (Credential, error) {
	if !bytes.Equal(b[0][0:2], magic[:]) {
		return Credential{}, ErrNotCredential
	}
	if b[0][2] != FormatVersion {
		return Credential{}, fmt.Errorf("%w %d", ErrVersion, b[0][2])
	}
	c := Credential{
		Version:    b[0][2],
		Type:       Type(b[0][3]),
		SiteID:     binary.BigEndian.Uint32(b[0][4:8]),
		Number:     binary.BigEndian.Uint64(b[0][8:16]),
		ValidFrom:  time.Unix(int64(binary.BigEndian.Uint32(b[1][0:4])), 0).UTC(),
		ValidUntil: time.Unix(int64(binary.BigEndian.Uint32(b[1][4:8])), 0).UTC(),
	}
	want := credentialMAC(macKey, uid, b[0], b[1])
	if !hmac.Equal(want, b[2][:]) {
		return c, ErrMAC
	}
	return c, nil
}

func credentialMAC(key, uid []byte, b0, b1 [16]byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("onecard/card/v1"))
	m.Write(uid)
	m.Write(b0[:])
	m.Write(b1[:])
	return m.Sum(nil)[:macSize]
}

// DiversifyKeys derives a card's sector keys A and B from the site master
// key, the card's UID and the sector number, so that one card's keys say
// nothing about another's.
func DiversifyKeys(master, uid []byte, sector int) (keyA, keyB [6]byte) {
	m := hmac.New(sha256.New, master)
	m.Write([]byte("onecard/mifare-keys/v1"))
	m.Write(uid)
	m.Write([]byte{byte(sector)})
	sum := m.Sum(nil)
	copy(keyA[:], sum[0:6])
	copy(keyB[:], sum[6:12])
	return keyA, keyB
}
