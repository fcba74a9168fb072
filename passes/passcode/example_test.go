package passcode_test

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"onecard/passes/passcode"
)

// The desk signs a pass valid for one day at the south gate; a terminal at
// the gate, holding only the public key, checks it offline.
func Example() {
	siteKey, err := passcode.NewKey() // in production: ParsePrivateKey of the site's key file
	if err != nil {
		panic(err)
	}
	cst := time.FixedZone("CST", 8*3600)
	day := time.Date(2026, 5, 2, 0, 0, 0, 0, cst)
	code, err := passcode.Sign(siteKey, passcode.Claims{
		Pass: "2026-000123", Gate: "south",
		NotBefore: day, NotAfter: day.AddDate(0, 0, 1),
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(len(code), "characters")

	// The terminal's keyring: the site's public key, from its configuration.
	keys, err := passcode.NewKeyring(siteKey.Public().(ed25519.PublicKey))
	if err != nil {
		panic(err)
	}
	scanned := code + "\r\n" // as a keyboard-wedge scanner types it
	c, err := passcode.Verify(scanned, keys, "south", day.Add(9*time.Hour))
	fmt.Println(c.Pass, c.Gate, err)

	_, err = passcode.Verify(scanned, keys, "north", day.Add(9*time.Hour))
	fmt.Println(err)
	_, err = passcode.Verify(scanned, keys, "south", day.AddDate(0, 0, 1).Add(time.Hour))
	fmt.Println(errors.Is(err, passcode.ErrExpired))
	_, err = passcode.Verify(code[:100], keys, "south", day.Add(9*time.Hour))
	fmt.Println(err)
	// Output:
	// 150 characters
	// 2026-000123 south <nil>
	// passcode: wrong gate: pass is for gate "south", not "north"
	// true
	// passcode: not a valid pass code: truncated (60 bytes)
}
