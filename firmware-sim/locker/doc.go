// Package lockersim simulates the device side of a parcel-locker bank: a
// row of KR-CU16-style lock boards sharing one RS-485 bus, 16 locks each,
// at addresses 0, 1, 2 …, faithfully enough that the devices/locker driver
// runs unchanged against it (over a pty made by firmwaresim.OpenPTY, or one
// end of a net.Pipe). Its frame handling is written here from
// docs/locker.md, not borrowed from the driver, so that the two check each
// other.
//
// # Line
//
// Bytes are taken as a UART at Options.Baud would deliver them, 10 bits a
// byte, and answers leave at the same pace. A request is 02 · ADDR · CMD ·
// 03 · SUM; a frame whose ETX or SUM is wrong is ignored (skipped by its
// STX, so a request right behind it is still heard), as is one for an
// address no board has. The board at ADDR's high nibble answers a status
// query (30) and an unlock (31) with a 9-byte reply echoing ADDR; other
// commands get no answer.
//
// # Doors
//
// Door d is lock (d-1) mod 16 on board (d-1) div 16; a last board's locks
// past Options.Doors are not wired and read open. Every door starts shut
// and latched. An unlock is answered with the state the board had when it
// heard it (the door has not moved yet); then the lock releases and the
// door springs open, Options.PopDelay later, and stays open until Close
// shuts it again. A stuck door (Stick) takes the unlock, answers, and
// never opens.
//
// # Faults
//
// Stick and SetSilent (a board that stops answering) hold until changed;
// InjectGarbage (bytes before the next answer) and Corrupt (the next
// answer with a wrong SUM) apply once.
package lockersim
