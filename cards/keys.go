package cards

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Keys are a site's card keys. They live in files, never in the database.
type Keys struct {
	// Master diversifies each card's sector keys.
	Master []byte
	// MAC signs credentials.
	MAC []byte
}

// KeyFiles says where the keys are. Empty paths mean the defaults in the
// data directory, generated on first start.
type KeyFiles struct {
	DataDir    string
	MasterFile string
	MACFile    string
}

const keyLen = 32

// LoadKeys reads the site's card keys. A key file named explicitly must
// exist; a default one in DATA_DIR/keys is generated (mode 0600) when it
// does not, and refused if others can read it.
func LoadKeys(f KeyFiles) (Keys, error) {
	master, err := loadKey(f.MasterFile, f.DataDir, "card-master.key")
	if err != nil {
		return Keys{}, err
	}
	mac, err := loadKey(f.MACFile, f.DataDir, "card-mac.key")
	if err != nil {
		return Keys{}, err
	}
	if hexEqual(master, mac) {
		return Keys{}, errors.New("cards: the master key and the MAC key must differ")
	}
	return Keys{Master: master, MAC: mac}, nil
}

func hexEqual(a, b []byte) bool { return hex.EncodeToString(a) == hex.EncodeToString(b) }

func loadKey(path, dataDir, name string) ([]byte, error) {
	if path != "" {
		return readKey(path)
	}
	if dataDir == "" {
		return nil, fmt.Errorf("cards: no data directory for %s", name)
	}
	dir := filepath.Join(dataDir, "keys")
	path = filepath.Join(dir, name)
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("cards: key directory: %w", err)
		}
		k := make([]byte, keyLen)
		if _, err := rand.Read(k); err != nil {
			return nil, err
		}
		// O_EXCL: two processes starting together cannot both write one.
		fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return readKey(path)
		}
		if err != nil {
			return nil, fmt.Errorf("cards: create %s: %w", path, err)
		}
		if _, err := fh.WriteString(hex.EncodeToString(k) + "\n"); err != nil {
			fh.Close()
			return nil, fmt.Errorf("cards: write %s: %w", path, err)
		}
		if err := fh.Close(); err != nil {
			return nil, err
		}
		return k, nil
	case err != nil:
		return nil, fmt.Errorf("cards: %s: %w", path, err)
	case st.Mode().Perm()&0o077 != 0:
		return nil, fmt.Errorf("cards: %s is readable by others (mode %v); chmod 600 it", path, st.Mode().Perm())
	}
	return readKey(path)
}

func readKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cards: key file: %w", err)
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(k) != keyLen {
		return nil, fmt.Errorf("cards: %s must hold %d bytes as hex (%d hex digits)", path, keyLen, 2*keyLen)
	}
	return k, nil
}
