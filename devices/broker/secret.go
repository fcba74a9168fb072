package broker

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// Mosquitto's "$7$" password hash: PBKDF2-HMAC-SHA512 with the iteration
// count, a random salt and the 64-byte key, each base64 (standard, padded),
// as mosquitto_passwd (2.x) writes them: $7$101$<salt>$<hash>.
const (
	hashIterations = 101 // mosquitto_passwd's default (PW_DEFAULT_ITERATIONS)
	hashSaltLen    = 12  // SALT_LEN in mosquitto's password code
	hashKeyLen     = sha512.Size
	maxIterations  = 1_000_000 // a stored hash cannot make CheckSecret run for long
)

// HashSecret hashes a device (or user) secret in Mosquitto's $7$ format,
// the line mosquitto_passwd would write after "username:". The same string
// goes into onecard's database and into a Mosquitto password file.
func HashSecret(secret string) (string, error) {
	salt := make([]byte, hashSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("broker: salt: %w", err)
	}
	key, err := pbkdf2.Key(sha512.New, secret, salt, hashIterations, hashKeyLen)
	if err != nil {
		return "", fmt.Errorf("broker: hash secret: %w", err)
	}
	return "$7$" + strconv.Itoa(hashIterations) + "$" + base64.StdEncoding.EncodeToString(salt) + "$" +
		base64.StdEncoding.EncodeToString(key), nil
}

// CheckSecret reports whether secret matches hash, a $7$ hash from
// HashSecret or mosquitto_passwd (any iteration count up to a million).
// The comparison is constant-time; a malformed hash matches nothing.
func CheckSecret(hash, secret string) bool {
	iter, salt, want, ok := parseHash(hash)
	if !ok {
		return false
	}
	got, err := pbkdf2.Key(sha512.New, secret, salt, iter, len(want))
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(got, want) == 1
}

// parseHash splits $7$<iterations>$<salt>$<key>.
func parseHash(hash string) (iter int, salt, key []byte, ok bool) {
	rest, found := strings.CutPrefix(hash, "$7$")
	if !found || strings.ContainsAny(hash, "\r\n") { // base64 would skip them
		return 0, nil, nil, false
	}
	parts := strings.Split(rest, "$")
	if len(parts) != 3 {
		return 0, nil, nil, false
	}
	iter, err := strconv.Atoi(parts[0])
	if err != nil || iter < 1 || iter > maxIterations {
		return 0, nil, nil, false
	}
	salt, err = base64.StdEncoding.DecodeString(parts[1])
	if err != nil || len(salt) == 0 {
		return 0, nil, nil, false
	}
	key, err = base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(key) != hashKeyLen {
		return 0, nil, nil, false
	}
	return iter, salt, key, true
}
