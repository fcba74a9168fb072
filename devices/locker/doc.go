// Package locker drives the lock boards of a parcel-locker bank on an
// RS-485 bus: KR-CU16-style boards, 16 locks each, one bus for the bank
// (48 doors are three boards at addresses 0, 1 and 2). Bank is the driver
// (Status, Open) and implements devices.Locker; the frame layout is a Codec,
// KRCU16 the one written so far, since layouts differ between board models.
//
// It knows bytes and door numbers, not parcels: which door holds whose
// parcel is the mailroom's concern. An unlock is confirmed by the door's
// sensor, polled after the unlock, never by the board's answer to the
// unlock itself. docs/locker.md has the frames, the addressing and the
// wiring.
//
// # Frames (KRCU16)
//
//	status query   02 · B0 · 30 · 03 · SUM            B = board address 0–F
//	unlock         02 · BL · 31 · 03 · SUM            L = lock 0–F on board B
//	reply          02 · ADDR · 35 · L1 · L2 · S1 · S2 · 03 · SUM
//
// SUM is the low byte of the sum of the bytes before it; the status query
// to board 0 is 02 00 30 03 35. L1 holds locks 1–8 (bit 0 is lock 1), L2
// locks 9–16; a set bit is a door shut and latched, a clear one an open
// door.
package locker
