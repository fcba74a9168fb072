package cards

import (
	"errors"
	"fmt"
)

// DataAccess names the access conditions of a data block (C1 C2 C3 of the
// MIFARE Classic datasheet). Only the conditions onecard uses have names.
type DataAccess struct {
	Name       string
	C1, C2, C3 bool
}

// TrailerAccess names the access conditions of a sector trailer.
type TrailerAccess struct {
	Name       string
	C1, C2, C3 bool
}

// The named conditions. The datasheet's table, row by row:
//
//	data   C1C2C3  read  write  increment  decrement
//	       0 0 0   A|B   A|B    A|B        A|B        (transport)
//	       1 0 0   A|B   B      never      never      (issued cards)
//	       0 1 0   A|B   never  never      never
//	trailer C1C2C3 key A write · access bits read/write · key B read/write
//	       0 0 1   A     · A / A      · A / A      (transport; key B readable)
//	       0 1 1   B     · A|B / B    · never / B  (issued cards)
//	       1 1 1   never · A|B / never · never / never (frozen)
var (
	DataTransport   = DataAccess{"transport: read and write with A or B", false, false, false}
	DataReadABWrite = DataAccess{"read with A or B, write with B", true, false, false}
	DataReadOnly    = DataAccess{"read with A or B, never write", false, true, false}

	TrailerTransport = TrailerAccess{"transport: key A writes everything, key B readable", false, false, true}
	TrailerKeyB      = TrailerAccess{"key B writes keys and access bits; key B never readable", false, true, true}
	TrailerFrozen    = TrailerAccess{"frozen: nothing writable", true, true, true}
)

// ErrAccessBits means three access bytes are malformed: each condition
// bit must appear with its inverted copy. Writing such a trailer would
// make the sector unusable for good.
var ErrAccessBits = errors.New("cards: malformed access bits")

// AccessBytes builds the three access bytes for the data blocks 0–2 of a
// sector and its trailer.
func AccessBytes(data [3]DataAccess, trailer TrailerAccess) [3]byte {
	var c1, c2, c3 byte
	set := func(i int, b1, b2, b3 bool) {
		if b1 {
			c1 |= 1 << i
		}
		if b2 {
			c2 |= 1 << i
		}
		if b3 {
			c3 |= 1 << i
		}
	}
	for i, d := range data {
		set(i, d.C1, d.C2, d.C3)
	}
	set(3, trailer.C1, trailer.C2, trailer.C3)
	return [3]byte{
		(^c2&0x0F)<<4 | (^c1 & 0x0F),
		c1<<4 | (^c3 & 0x0F),
		c3<<4 | c2,
	}
}

// ValidateAccessBytes checks that every condition bit agrees with its
// inverted copy.
func ValidateAccessBytes(b [3]byte) error {
	nc1, nc2 := b[0]&0x0F, b[0]>>4
	c1, nc3 := b[1]>>4, b[1]&0x0F
	c2, c3 := b[2]&0x0F, b[2]>>4
	if c1^nc1 != 0x0F || c2^nc2 != 0x0F || c3^nc3 != 0x0F {
		return fmt.Errorf("%w: % X", ErrAccessBits, b[:])
	}
	return nil
}

// Conditions returns C1 C2 C3 for block i (0–2 data, 3 trailer) of valid
// access bytes.
func Conditions(b [3]byte, i int) (c1, c2, c3 bool, err error) {
	if err := ValidateAccessBytes(b); err != nil {
		return false, false, false, err
	}
	return b[1]>>(4+i)&1 == 1, b[2]>>i&1 == 1, b[2]>>(4+i)&1 == 1, nil
}

// Trailer is a sector trailer block.
type Trailer struct {
	KeyA   [6]byte
	Access [3]byte
	GPB    byte
	KeyB   [6]byte
}

// Block returns the 16 bytes of the trailer, refusing malformed access
// bits: this is the only way onecard builds a trailer to write.
func (t Trailer) Block() ([16]byte, error) {
	var b [16]byte
	if err := ValidateAccessBytes(t.Access); err != nil {
		return b, err
	}
	copy(b[0:6], t.KeyA[:])
	copy(b[6:9], t.Access[:])
	b[9] = t.GPB
	copy(b[10:16], t.KeyB[:])
	return b, nil
}

// TransportKey is the factory key of a blank card.
var TransportKey = [6]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}

// TransportTrailer is a blank card's trailer: FF…FF · FF 07 80 · 69 · FF…FF.
var TransportTrailer = Trailer{KeyA: TransportKey, Access: [3]byte{0xFF, 0x07, 0x80}, GPB: 0x69, KeyB: TransportKey}
