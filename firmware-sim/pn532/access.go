package pn532sim

// MIFARE Classic access conditions, from the NXP MIFARE Classic EV1 1K
// datasheet (MF1S50yyX/V1, §8.7 "Memory access"). Each block of a sector has
// three bits C1 C2 C3, stored in trailer bytes 6–8 with an inverted copy:
//
//	byte 6: ¬C2(b3..b0) ¬C1(b3..b0)
//	byte 7:  C1(b3..b0) ¬C3(b3..b0)
//	byte 8:  C3(b3..b0)  C2(b3..b0)
//
// where bit i of each nibble belongs to block i of the sector (3 = the
// trailer). A cond below is C1<<2 | C2<<1 | C3.

// who says which keys may do something.
type who uint8

const (
	never  who = 0
	keyA   who = 1
	keyB   who = 2
	either     = keyA | keyB
)

// allows reports whether a session authenticated with key B (or A) may.
func (w who) allows(withB bool) bool {
	if withB {
		return w&keyB != 0
	}
	return w&keyA != 0
}

// dataRule is a row of "Access conditions for data blocks". Value-block
// operations (increment, decrement, transfer, restore) are not simulated:
// the card encoder uses none.
type dataRule struct{ read, write who }

var dataRules = [8]dataRule{
	0b000: {either, either}, // transport configuration
	0b010: {either, never},
	0b100: {either, keyB},
	0b110: {either, keyB},
	0b001: {either, never},
	0b011: {keyB, keyB},
	0b101: {keyB, never},
	0b111: {never, never},
}

// trailerRule is a row of "Access conditions for the sector trailer". Key A
// is never readable. The general-purpose byte (9) follows the access bits.
type trailerRule struct {
	keyAWrite, accessRead, accessWrite, keyBRead, keyBWrite who
}

var trailerRules = [8]trailerRule{
	0b000: {keyA, keyA, never, keyA, keyA},
	0b010: {never, keyA, never, keyA, never},
	0b100: {keyB, either, never, never, keyB},
	0b110: {never, either, never, never, never},
	0b001: {keyA, keyA, keyA, keyA, keyA}, // transport configuration
	0b011: {keyB, either, keyB, never, keyB},
	0b101: {never, either, keyB, never, never},
	0b111: {never, either, never, never, never},
}

// keyBReadable: where key B is readable it is data, not a key, and cannot
// authenticate (the grey rows of the datasheet's tables). A real EV1 card
// accepts the authentication and then refuses every access; the simulator
// refuses the authentication itself, which a driver sees the same way.
func (r trailerRule) keyBReadable() bool { return r.keyBRead != never }

// decodeAccess splits trailer bytes 6–8 into the cond of each block (index
// 3 is the trailer). ok is false when an inverted copy does not match: on a
// card that format violation blocks the sector for good.
func decodeAccess(b6, b7, b8 byte) (cond [4]uint8, ok bool) {
	c1, c2, c3 := b7>>4, b8&0x0F, b8>>4
	n1, n2, n3 := b6&0x0F, b6>>4, b7&0x0F
	if c1^n1 != 0x0F || c2^n2 != 0x0F || c3^n3 != 0x0F {
		return cond, false
	}
	for i := range cond {
		cond[i] = (c1>>i&1)<<2 | (c2>>i&1)<<1 | c3>>i&1
	}
	return cond, true
}
