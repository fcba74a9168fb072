package cards_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"onecard/cards"
)

var (
	macKey = []byte("0123456789abcdef0123456789abcdef")
	uid    = []byte{0xDE, 0xAD, 0xBE, 0xEF}
	cred   = cards.Credential{Version: cards.FormatVersion, SiteID: 7, Number: 100234, Type: cards.Tenant,
		ValidFrom: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), ValidUntil: time.Date(2027, 11, 30, 16, 0, 0, 0, time.UTC)}
)

func TestCredentialLayout(t *testing.T) {
	b, err := cards.Encode(cred, uid, macKey)
	if err != nil {
		t.Fatal(err)
	}
	// 100234 = 0x0001878A.
	want0 := [16]byte{'O', 'C', 1, 3, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0x01, 0x87, 0x8A}
	if b[0] != want0 {
		t.Fatalf("block 0 % X, want % X", b[0], want0)
	}
	if from := uint32(b[1][0])<<24 | uint32(b[1][1])<<16 | uint32(b[1][2])<<8 | uint32(b[1][3]); int64(from) != cred.ValidFrom.Unix() {
		t.Fatalf("valid from %d", from)
	}
	got, err := cards.Decode(b, uid, macKey)
	if err != nil || got != cred {
		t.Fatalf("round trip: %+v %v", got, err)
	}
}

func TestCredentialTamperIsDetected(t *testing.T) {
	b, _ := cards.Encode(cred, uid, macKey)
	for blk := 0; blk < 3; blk++ {
		for bit := 0; bit < 128; bit++ {
			x := b
			x[blk][bit/8] ^= 1 << (bit % 8)
			_, err := cards.Decode(x, uid, macKey)
			if err == nil {
				t.Fatalf("block %d bit %d flipped: accepted", blk, bit)
			}
		}
	}
	// The same blocks copied to another card (a clone) fail the MAC.
	if _, err := cards.Decode(b, []byte{1, 2, 3, 4}, macKey); !errors.Is(err, cards.ErrMAC) {
		t.Fatalf("cloned to another UID: %v", err)
	}
	if _, err := cards.Decode(b, uid, []byte("another site's key, also 32 byte")); !errors.Is(err, cards.ErrMAC) {
		t.Fatalf("another site's key: %v", err)
	}
	if _, err := cards.Decode([3][16]byte{}, uid, macKey); !errors.Is(err, cards.ErrNotCredential) {
		t.Fatalf("empty blocks: %v", err)
	}
}

func TestCredentialRefusesNonsense(t *testing.T) {
	for name, c := range map[string]cards.Credential{
		"no type":        {Number: 1, ValidFrom: cred.ValidFrom, ValidUntil: cred.ValidUntil},
		"no number":      {Type: cards.Owner, ValidFrom: cred.ValidFrom, ValidUntil: cred.ValidUntil},
		"ends at start":  {Type: cards.Owner, Number: 1, ValidFrom: cred.ValidFrom, ValidUntil: cred.ValidFrom},
		"after 2106":     {Type: cards.Owner, Number: 1, ValidFrom: cred.ValidFrom, ValidUntil: time.Date(2107, 1, 1, 0, 0, 0, 0, time.UTC)},
		"unknown type 9": {Type: 9, Number: 1, ValidFrom: cred.ValidFrom, ValidUntil: cred.ValidUntil},
	} {
		if _, err := cards.Encode(c, uid, macKey); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
}

func TestDiversifiedKeys(t *testing.T) {
	master := []byte("master key master key master key")
	a1, b1 := cards.DiversifyKeys(master, uid, 1)
	a2, b2 := cards.DiversifyKeys(master, []byte{0xDE, 0xAD, 0xBE, 0xEE}, 1)
	a3, _ := cards.DiversifyKeys(master, uid, 2)
	again, _ := cards.DiversifyKeys(master, uid, 1)
	if a1 == b1 || a1 == a2 || b1 == b2 || a1 == a3 || a1 != again || a1 == cards.TransportKey {
		t.Fatalf("keys do not diversify: %X %X %X %X %X", a1, b1, a2, b2, a3)
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	k, err := cards.LoadKeys(cards.KeyFiles{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"card-master.key", "card-mac.key"} {
		st, err := os.Stat(filepath.Join(dir, "keys", name))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", name, st.Mode(), err)
		}
	}
	again, err := cards.LoadKeys(cards.KeyFiles{DataDir: dir})
	if err != nil || string(again.Master) != string(k.Master) || string(again.MAC) != string(k.MAC) {
		t.Fatalf("second start read other keys: %v", err)
	}
	os.Chmod(filepath.Join(dir, "keys", "card-mac.key"), 0o644)
	if _, err := cards.LoadKeys(cards.KeyFiles{DataDir: dir}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key accepted: %v", err)
	}
	explicit := filepath.Join(t.TempDir(), "master")
	os.WriteFile(explicit, []byte("zz\n"), 0o600)
	if _, err := cards.LoadKeys(cards.KeyFiles{DataDir: dir, MasterFile: explicit}); err == nil {
		t.Fatal("a key file that is not hex was accepted")
	}
	if _, err := cards.LoadKeys(cards.KeyFiles{DataDir: dir, MasterFile: filepath.Join(dir, "missing")}); err == nil {
		t.Fatal("a named key file that does not exist was generated")
	}
}

func FuzzDecode(f *testing.F) {
	b, _ := cards.Encode(cred, uid, macKey)
	var flat []byte
	for _, blk := range b {
		flat = append(flat, blk[:]...)
	}
	f.Add(flat)
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) != 48 {
			return
		}
		var blocks [3][16]byte
		for i := range blocks {
			copy(blocks[i][:], in[i*16:])
		}
		c, err := cards.Decode(blocks, uid, macKey)
		if err == nil {
			// Only what we signed decodes cleanly, and it re-encodes exactly.
			re, err := cards.Encode(c, uid, macKey)
			if err != nil || re != blocks {
				t.Fatalf("accepted blocks that do not re-encode: %v", err)
			}
		}
	})
}
