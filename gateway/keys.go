package gateway

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Keys are Ed25519, in PEM files: a private key as PKCS #8 ("PRIVATE
// KEY"), a public key as PKIX ("PUBLIC KEY"), as openssl writes them:
//
//	openssl genpkey -algorithm ed25519 -out merchant.pem
//	openssl pkey -in merchant.pem -pubout -out merchant.pub.pem

// GenerateKey returns a new Ed25519 private key.
func GenerateKey() ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return k
}

// EncodePrivateKey returns k as a PEM "PRIVATE KEY" block.
func EncodePrivateKey(k ed25519.PrivateKey) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		panic(err) // an ed25519.PrivateKey always marshals
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// EncodePublicKey returns k as a PEM "PUBLIC KEY" block.
func EncodePublicKey(k ed25519.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// ParsePrivateKey reads an Ed25519 private key from PEM.
func ParsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New(`gateway: want a PEM "PRIVATE KEY" block`)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("gateway: private key: %w", err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("gateway: private key is %T, want Ed25519", k)
	}
	return ek, nil
}

// ParsePublicKey reads an Ed25519 public key from PEM: a "PUBLIC KEY"
// block, or a "PRIVATE KEY" whose public half it returns.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	blk, _ := pem.Decode(b)
	switch {
	case blk == nil:
		return nil, errors.New(`gateway: want a PEM "PUBLIC KEY" block`)
	case blk.Type == "PRIVATE KEY":
		k, err := ParsePrivateKey(b)
		if err != nil {
			return nil, err
		}
		return k.Public().(ed25519.PublicKey), nil
	case blk.Type != "PUBLIC KEY":
		return nil, fmt.Errorf(`gateway: PEM block %q, want "PUBLIC KEY"`, blk.Type)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("gateway: public key: %w", err)
	}
	ek, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("gateway: public key is %T, want Ed25519", k)
	}
	return ek, nil
}

// LoadPrivateKey reads a private key file, which others must not be able
// to read (mode 0600).
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("gateway: key file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("gateway: %s is readable by others (mode %v); chmod 600 it", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gateway: key file: %w", err)
	}
	k, err := ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return k, nil
}

// LoadOrCreatePrivateKey reads a private key file, or writes a new key
// there (mode 0600) if there is none; created says which.
func LoadOrCreatePrivateKey(path string) (k ed25519.PrivateKey, created bool, err error) {
	k, err = LoadPrivateKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, false, err
	}
	k = GenerateKey()
	// O_EXCL: two processes starting together cannot both write one.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		k, err = LoadPrivateKey(path)
		return k, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("gateway: create key file: %w", err)
	}
	if _, err := f.Write(EncodePrivateKey(k)); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("gateway: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, false, err
	}
	return k, true, nil
}

// LoadPublicKey reads a public key file (or the public half of a private
// key file).
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gateway: key file: %w", err)
	}
	k, err := ParsePublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return k, nil
}
