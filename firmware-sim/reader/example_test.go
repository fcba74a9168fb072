package reader_test

import (
	"fmt"

	"onecard/firmware-sim/reader"
)

// A reader decides even before it ever connected, and queues the event
// until a server acknowledges it. (Run connects it: see the package
// documentation.)
func Example() {
	r, err := reader.New(reader.Options{Site: "s1", ID: "gate-1", Zone: "gate"})
	if err != nil {
		panic(err)
	}
	d := r.Tap("04:a2:3b:1c")
	fmt.Println(d.Granted, d.Reason, r.Pending(), r.Online())
	// Output: false unknown 1 false
}
