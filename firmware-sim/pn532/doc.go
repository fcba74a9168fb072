// Package pn532sim simulates the device side of the desk card encoder: an
// NXP PN532 on its high-speed UART (HSU) with virtual MIFARE Classic 1K cards
// on its antenna, faithful enough that the devices/pn532 driver runs
// unchanged against it (over net.Pipe in tests, over a pty otherwise).
//
// # Host link
//
// Every host frame with valid checksums is ACKed (00 00 FF 00 FF 00), then
// answered with a response frame (TFI D5, code = command + 1) or, for an
// unknown command or malformed parameters, with the application error frame
// 00 00 FF 01 FF 7F 81 00. A host frame with a bad checksum gets a NACK and
// is ignored. A host ACK while a command is pending (InListPassiveTarget
// waiting for a card) aborts it: no response is sent. A host NACK makes the
// simulator resend its last response frame.
//
// Commands: GetFirmwareVersion 02, SAMConfiguration 14, RFConfiguration 32
// (item 05 sets MxRtyPassiveActivation: FF, the power-on default, waits for
// a card for ever; n < FF answers "0 targets" after n+1 attempts of 2 ms),
// InListPassiveTarget 4A (106 kbps type A), InDataExchange 40 and InRelease
// 52.
//
// # Cards
//
// InDataExchange carries MIFARE Classic AUTH 60/61, READ 30 and WRITE A0.
// Status 00 is success; 14 is any refusal by the card (wrong key or UID,
// bricked sector, access conditions, block 0, a block of a sector not
// authenticated); after a refusal the card halts, like a real card after a
// NAK, and every exchange answers 01 (time out) until the next
// InListPassiveTarget. 01 also means the card left the antenna; 27 means no
// target was listed (or it was released).
//
// Access conditions follow the MIFARE Classic EV1 datasheet tables (see
// access.go). Where key B is readable (trailer conditions 000, 010, 001,
// transport state included) authentication with key B is refused. Writing a
// trailer changes the fields the key may write and keeps the others;
// malformed access bytes are written as asked and brick the sector for good.
//
// # Faults
//
// InjectGarbage, DropNextACK, CorruptNextResponse, RemoveCardOnNextWrite and
// PowerLoss each apply once, to the next matching event.
package pn532sim
