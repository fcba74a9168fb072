package mailroom_test

import (
	"fmt"
	"testing"

	"onecard/mailroom"
	"onecard/store/storetest"
)

// BenchmarkRegister registers express parcels one transaction each, as a
// clerk scanning them does (the desk's target is 20 a minute). Run it
// without -race: go test -run '^$' -bench Register ./mailroom/
func BenchmarkRegister(b *testing.B) {
	db := storetest.SQLite(b)
	r := newRoom(b, db, mailroom.Options{})
	b.ResetTimer()
	for i := range b.N {
		if _, err := r.m.Register(r.clerk, parcel(fmt.Sprintf("SF%013d", i))); err != nil {
			b.Fatal(err)
		}
	}
}
