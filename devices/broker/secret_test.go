package broker_test

import (
	"regexp"
	"strings"
	"testing"

	"onecard/devices/broker"
)

func TestHashSecret(t *testing.T) {
	h, err := broker.HashSecret("s3cret-pass")
	if err != nil {
		t.Fatal(err)
	}
	// $7$, 101 iterations, 12 bytes of salt, 64 bytes of PBKDF2-HMAC-SHA512.
	if !regexp.MustCompile(`^\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$`).MatchString(h) {
		t.Errorf("hash %q is not in mosquitto_passwd's format", h)
	}
	if !broker.CheckSecret(h, "s3cret-pass") {
		t.Error("secret refused by its own hash")
	}
	for _, wrong := range []string{"", "s3cret-pas", "s3cret-pass ", "S3cret-pass"} {
		if broker.CheckSecret(h, wrong) {
			t.Errorf("%q accepted", wrong)
		}
	}
	if h2, _ := broker.HashSecret("s3cret-pass"); h2 == h {
		t.Error("two hashes of one secret are equal: the salt is not random")
	}
}

// Lines written by mosquitto_passwd 2.0.11 (mosquitto_passwd -b -c file user secret).
func TestCheckSecretMosquittoFixtures(t *testing.T) {
	fixtures := []struct{ line, secret string }{
		{`gate-1:$7$101$ImccenCKbXA8EgDF$T5bA8k9L+uezmqyM2dhegaAwTvJSAP/zz4qb3x9IfUeb5E0cmGiRYQ43jUsTcW2WEgm8kgLuAVG9uqY2XnJHlQ==`, "s3cret-pass"},
		{`monitor:$7$101$mB9QGLzwFKDZI86p$qLGi8/jMz40J35wz3vjSGU5XYNMMwMnRqEyCvjaOkfueYxJzqjdZPsjHWLGfCiBDGbHrkv/UC1hYRPPmxMRopQ==`, "门禁 密码!"},
	}
	for _, f := range fixtures {
		user, hash, _ := strings.Cut(f.line, ":")
		if !broker.CheckSecret(hash, f.secret) {
			t.Errorf("%s: mosquitto_passwd's hash refuses its secret", user)
		}
		if broker.CheckSecret(hash, f.secret+"x") {
			t.Errorf("%s: wrong secret accepted", user)
		}
	}
}

func TestCheckSecretMalformed(t *testing.T) {
	good, _ := broker.HashSecret("pw")
	parts := strings.Split(good, "$") // "", "7", "101", salt, key
	for _, h := range []string{
		"",
		"pw",
		"$6$" + parts[3] + "$" + parts[4], // Mosquitto 1.x sha512: not supported
		"$7$0$" + parts[3] + "$" + parts[4],
		"$7$-1$" + parts[3] + "$" + parts[4],
		"$7$99999999$" + parts[3] + "$" + parts[4], // would take minutes
		"$7$101$$" + parts[4],
		"$7$101$" + parts[3] + "$" + parts[4][:40],
		"$7$101$" + parts[3] + "$" + parts[4] + "$",
		"$7$101$" + parts[3] + "$" + parts[4][:40] + "\n" + parts[4][40:],
		"$7$101$not base64!$" + parts[4],
	} {
		if broker.CheckSecret(h, "pw") {
			t.Errorf("malformed hash %q accepted", h)
		}
	}
}
