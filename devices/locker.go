package devices

import (
	"context"
	"errors"
	"fmt"
)

// ErrDoorNotOpened: the locker board was told to release a door's lock but
// the door's sensor still says shut and latched (a jammed door, a broken
// solenoid, or a board that never heard the unlock). Nothing came out: send
// staff, or offer another door.
var ErrDoorNotOpened = errors.New("locker door did not open")

// DoorState is what a locker door's sensor says.
type DoorState uint8

// The door states. DoorUnknown is for a door whose board did not answer.
const (
	DoorUnknown DoorState = iota
	DoorClosed            // shut and latched
	DoorOpen
)

// String is the state's name: "unknown", "closed" or "open".
func (s DoorState) String() string {
	switch s {
	case DoorUnknown:
		return "unknown"
	case DoorClosed:
		return "closed"
	case DoorOpen:
		return "open"
	}
	return fmt.Sprintf("door(%d)", uint8(s))
}

// Locker is a bank of parcel-locker doors, numbered 1 to Doors(): what the
// mailroom needs. Errors wrap ErrTimeout (a board did not answer),
// ErrDoorNotOpened or ErrPortFailed.
type Locker interface {
	// Doors is how many doors the bank has.
	Doors() int
	// Status reads every door's sensor: element i is door i+1. When some
	// boards do not answer, it still returns the others' doors, with
	// DoorUnknown for the silent boards' doors, and an error.
	Status(ctx context.Context) ([]DoorState, error)
	// Open releases a door's lock and returns once its sensor says open.
	Open(ctx context.Context, door int) error
}
