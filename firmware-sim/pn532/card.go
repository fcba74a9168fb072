package pn532sim

import (
	"fmt"
	"sync"
)

// MIFARE Classic 1K geometry.
const (
	Sectors = 16
	Blocks  = Sectors * 4
)

// Identity of a MIFARE Classic 1K, as block 0 and the anticollision report it.
const (
	sak = 0x08
	// atqa4 and atqa7 are ATQA (SENS_RES) for single- and double-size UIDs.
	atqa4 = 0x0004
	atqa7 = 0x0044
)

// manufacturer fills block 0 after the UID, SAK and ATQA.
var manufacturer = [8]byte{0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69}

// transportTrailer is every sector trailer of a new card: keys FF…FF,
// access bytes FF 07 80 (data blocks 000, trailer 001), GPB 69.
var transportTrailer = [16]byte{
	0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
	0xFF, 0x07, 0x80, 0x69,
	0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
}

// Card is a virtual MIFARE Classic 1K. It holds memory only: which sector
// the reader authenticated, and with which key, is the Sim's session state.
// A Card is safe for concurrent use.
type Card struct {
	uid []byte // immutable

	mu      sync.Mutex
	blocks  [Blocks][16]byte
	bricked [Sectors]bool
}

// NewCard returns a card in transport state: block 0 holds the UID, the BCC
// (4-byte UIDs), SAK 08, ATQA and manufacturer bytes; every trailer is
// FF×6 · FF 07 80 · 69 · FF×6; data blocks are zero. NewCard panics unless
// uid has 4 or 7 bytes.
func NewCard(uid []byte) *Card {
	if len(uid) != 4 && len(uid) != 7 {
		panic(fmt.Sprintf("pn532sim: a MIFARE Classic UID has 4 or 7 bytes, not %d", len(uid)))
	}
	c := &Card{uid: append([]byte(nil), uid...)}
	b0 := &c.blocks[0]
	n := copy(b0[:], uid)
	atqa := uint16(atqa7)
	if len(uid) == 4 {
		b0[4] = uid[0] ^ uid[1] ^ uid[2] ^ uid[3]
		n++
		atqa = atqa4
	}
	// ATQA is stored least significant byte first.
	n += copy(b0[n:], []byte{sak, byte(atqa), byte(atqa >> 8)})
	copy(b0[n:], manufacturer[:])
	for s := range Sectors {
		c.blocks[trailerOf(s)] = transportTrailer
	}
	return c
}

// UID returns a copy of the card's UID.
func (c *Card) UID() []byte { return append([]byte(nil), c.uid...) }

// atqa is the SENS_RES the card answers, most significant byte first as the
// PN532 reports it.
func (c *Card) atqa() [2]byte {
	if len(c.uid) == 7 {
		return [2]byte{atqa7 >> 8, atqa7 & 0xFF}
	}
	return [2]byte{atqa4 >> 8, atqa4 & 0xFF}
}

// Block returns block n's raw contents, trailer keys included as stored.
// It panics if n is not a block of a 1K card.
func (c *Card) Block(n int) [16]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.blocks[n]
}

// SetBlock overwrites block n's raw contents, bypassing keys and access
// conditions (block 0 included), to prepare a test. A trailer with
// malformed access bytes bricks its sector, as a write over the air would.
func (c *Card) SetBlock(n int, b [16]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.blocks[n] = b
	if isTrailer(n) {
		if _, ok := decodeAccess(b[6], b[7], b[8]); !ok {
			c.bricked[n/4] = true
		}
	}
}

// Bricked reports whether sector's access bytes were ever written malformed:
// the sector then refuses every authentication, for good.
func (c *Card) Bricked(sector int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bricked[sector]
}

func trailerOf(sector int) int { return sector*4 + 3 }
func isTrailer(block int) bool { return block%4 == 3 }

// rules returns the access conditions of block's sector, decoded from the
// stored trailer; ok is false if the sector is bricked. c.mu must be held.
func (c *Card) rules(block int) (cond uint8, tr trailerRule, ok bool) {
	s := block / 4
	if c.bricked[s] {
		return 0, tr, false
	}
	t := c.blocks[trailerOf(s)]
	conds, ok := decodeAccess(t[6], t[7], t[8])
	if !ok {
		return 0, tr, false
	}
	return conds[block%4], trailerRules[conds[3]], true
}

// auth checks a three-pass authentication to block's sector: the key
// against the stored trailer, and uid4 against the UID's last four bytes
// (what the crypto binds to, for single- and double-size UIDs alike).
func (c *Card) auth(block int, withB bool, key, uid4 []byte) bool {
	if block < 0 || block >= Blocks || len(key) != 6 || string(uid4) != string(c.uid[len(c.uid)-4:]) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, tr, ok := c.rules(block)
	if !ok {
		return false
	}
	t := c.blocks[trailerOf(block/4)]
	stored := t[0:6]
	if withB {
		if tr.keyBReadable() {
			return false
		}
		stored = t[10:16]
	}
	return string(stored) == string(key)
}

// read reads block for a session authenticated with key B (or A). Trailer
// reads show key A as zeros and the other fields as their conditions allow.
func (c *Card) read(block int, withB bool) ([16]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cond, tr, ok := c.rules(block)
	if !ok {
		return [16]byte{}, false
	}
	b := c.blocks[block]
	if !isTrailer(block) {
		return b, dataRules[cond].read.allows(withB)
	}
	var out [16]byte
	if tr.accessRead.allows(withB) {
		copy(out[6:10], b[6:10])
	}
	if tr.keyBRead.allows(withB) {
		copy(out[10:16], b[10:16])
	}
	return out, true
}

// write writes block for a session authenticated with key B (or A). A
// trailer write changes the fields the key may write and keeps the others;
// it is refused only if the key may write none. New access bytes that are
// malformed brick the sector: the card does not check them first, the
// driver must.
func (c *Card) write(block int, withB bool, data [16]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	cond, tr, ok := c.rules(block)
	if !ok || block == 0 {
		return false
	}
	if !isTrailer(block) {
		if !dataRules[cond].write.allows(withB) {
			return false
		}
		c.blocks[block] = data
		return true
	}
	wA, wAcc, wB := tr.keyAWrite.allows(withB), tr.accessWrite.allows(withB), tr.keyBWrite.allows(withB)
	if !wA && !wAcc && !wB {
		return false
	}
	b := &c.blocks[block]
	if wA {
		copy(b[0:6], data[0:6])
	}
	if wAcc {
		copy(b[6:10], data[6:10])
		if _, ok := decodeAccess(b[6], b[7], b[8]); !ok {
			c.bricked[block/4] = true
		}
	}
	if wB {
		copy(b[10:16], data[10:16])
	}
	return true
}
