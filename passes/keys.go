package passes

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"onecard/passes/passcode"
)

// LoadKey reads the site's pass signing key (Ed25519, PEM PKCS#8) from
// path, or, with path empty, from DATA_DIR/keys/pass.pem, which is made on
// first use. The file must be readable by its owner only.
func LoadKey(path, dataDir string) (ed25519.PrivateKey, error) {
	if path == "" {
		if dataDir == "" {
			return nil, errors.New("passes: no data directory for the pass key")
		}
		dir := filepath.Join(dataDir, "keys")
		path = filepath.Join(dir, "pass.pem")
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("passes: key directory: %w", err)
			}
			k, err := passcode.NewKey()
			if err != nil {
				return nil, err
			}
			b, err := passcode.EncodePrivateKey(k)
			if err != nil {
				return nil, err
			}
			// O_EXCL: two processes starting together cannot both write one.
			fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			switch {
			case errors.Is(err, fs.ErrExist):
			case err != nil:
				return nil, fmt.Errorf("passes: create %s: %w", path, err)
			default:
				_, werr := fh.Write(b)
				if cerr := fh.Close(); werr == nil {
					werr = cerr
				}
				if werr != nil {
					return nil, fmt.Errorf("passes: write %s: %w", path, werr)
				}
				return k, nil
			}
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("passes: pass key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("passes: %s is readable by others (mode %v); chmod 600 it", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("passes: pass key: %w", err)
	}
	k, err := passcode.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("passes: %s: %w", path, err)
	}
	return k, nil
}
