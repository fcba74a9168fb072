//go:build unix && !linux

package firmwaresim

import "os"

// makeRaw leaves the tty as it is: the driver sets raw mode when it opens
// the port, before the simulator ever writes.
func makeRaw(*os.File) error { return nil }
