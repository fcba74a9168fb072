package mailroom_test

import (
	"fmt"

	"onecard/mailroom"
)

// A webhook receiver checks a message: the signature header is "sha256="
// and this, over the timestamp header, a dot and the raw body.
func ExampleSign() {
	body := []byte(`{"id":42,"kind":"arrival","unit":"1-1-101"}`)
	fmt.Println(mailroom.Sign([]byte("shared secret"), "1763604000", body))
	// Output: 4b06c4ebf0ef9e7159c73e66d499d9470dbea2ba975b51118b47c12633a9bd00
}
