package passcode

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
)

// A site signs its passes with its own Ed25519 pass key. Keys travel as
// PEM, as openssl writes them (PKCS #8 "PRIVATE KEY", PKIX "PUBLIC KEY"):
//
//	openssl genpkey -algorithm ed25519 -out pass.pem
//	openssl pkey -in pass.pem -pubout -out pass.pub.pem
//
// A terminal's configuration may instead carry a public key as one line:
// the standard base64 of its 32 bytes.

// KeyID names a public key inside a pass code: the first two bytes of the
// SHA-256 of its 32 bytes. Two keys may share an id; Parse then tries both.
type KeyID uint16

// String returns the id as four hex digits.
func (id KeyID) String() string { return fmt.Sprintf("%04x", uint16(id)) }

// KeyIDOf returns the id of pub.
func KeyIDOf(pub ed25519.PublicKey) KeyID {
	h := sha256.Sum256(pub)
	return KeyID(binary.BigEndian.Uint16(h[:2]))
}

// NewKey returns a new pass key.
func NewKey() (ed25519.PrivateKey, error) {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("passcode: new key: %w", err)
	}
	return k, nil
}

// Keyring holds the public keys a verifier accepts: at a terminal, the
// site's current pass key and, while passes signed with it are still
// valid, the previous one. The zero Keyring accepts nothing.
type Keyring struct {
	keys map[KeyID][]ed25519.PublicKey
}

// NewKeyring returns a keyring of pubs.
func NewKeyring(pubs ...ed25519.PublicKey) (*Keyring, error) {
	r := &Keyring{}
	for _, k := range pubs {
		if _, err := r.Add(k); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Add adds pub to the keyring and returns its id. Adding a key twice adds
// it once.
func (r *Keyring) Add(pub ed25519.PublicKey) (KeyID, error) {
	if len(pub) != ed25519.PublicKeySize {
		return 0, fmt.Errorf("passcode: public key of %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	id := KeyIDOf(pub)
	for _, k := range r.keys[id] {
		if k.Equal(pub) {
			return id, nil
		}
	}
	if r.keys == nil {
		r.keys = make(map[KeyID][]ed25519.PublicKey)
	}
	r.keys[id] = append(r.keys[id], bytes.Clone(pub))
	return id, nil
}

// Len returns the number of keys in the keyring.
func (r *Keyring) Len() int {
	n := 0
	if r != nil {
		for _, ks := range r.keys {
			n += len(ks)
		}
	}
	return n
}

func (r *Keyring) lookup(id KeyID) []ed25519.PublicKey {
	if r == nil {
		return nil
	}
	return r.keys[id]
}

// EncodePrivateKey returns k as a PEM "PRIVATE KEY" block (PKCS #8).
func EncodePrivateKey(k ed25519.PrivateKey) ([]byte, error) {
	if len(k) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("passcode: private key of %d bytes, want %d", len(k), ed25519.PrivateKeySize)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("passcode: private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePrivateKey reads an Ed25519 private key from a PEM "PRIVATE KEY"
// block.
func ParsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New(`passcode: want a PEM "PRIVATE KEY" block`)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("passcode: private key: %w", err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("passcode: private key is %T, want Ed25519", k)
	}
	return ek, nil
}

// EncodePublicKey returns k as a PEM "PUBLIC KEY" block (PKIX), the form to
// hand to gate terminals.
func EncodePublicKey(k ed25519.PublicKey) ([]byte, error) {
	if len(k) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("passcode: public key of %d bytes, want %d", len(k), ed25519.PublicKeySize)
	}
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return nil, fmt.Errorf("passcode: public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParsePublicKey reads an Ed25519 public key: a PEM "PUBLIC KEY" block, or
// one line of standard base64 of the key's 32 bytes.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	b = bytes.TrimSpace(b)
	if !bytes.HasPrefix(b, []byte("-----")) {
		raw, err := base64.StdEncoding.Strict().DecodeString(string(b))
		if err != nil || len(raw) != ed25519.PublicKeySize {
			return nil, fmt.Errorf(`passcode: want a PEM "PUBLIC KEY" block or base64 of %d bytes`, ed25519.PublicKeySize)
		}
		return ed25519.PublicKey(raw), nil
	}
	blk, rest := pem.Decode(b)
	switch {
	case blk == nil:
		return nil, errors.New(`passcode: want a PEM "PUBLIC KEY" block`)
	case blk.Type != "PUBLIC KEY":
		return nil, fmt.Errorf(`passcode: PEM block %q, want "PUBLIC KEY"`, blk.Type)
	case len(bytes.TrimSpace(rest)) > 0:
		return nil, errors.New("passcode: more than one PEM block; give one key at a time")
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("passcode: public key: %w", err)
	}
	ek, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("passcode: public key is %T, want Ed25519", k)
	}
	return ek, nil
}
