package locker

import (
	"bytes"
	"errors"
)

// Codec is a lock board model's byte layout: the frames the host sends and
// the replies it reads back. Layouts differ between board models; the
// driver knows only this interface. KRCU16 is the one implementation.
//
// Boards on one bus are numbered from 0 by the address set on each board
// (DIP switches); locks on a board from 0.
type Codec interface {
	// Locks is how many locks one board drives.
	Locks() int
	// Boards is how many boards one bus can address.
	Boards() int
	// StatusRequest returns the frame asking board for its locks' state.
	StatusRequest(board int) []byte
	// UnlockRequest returns the frame telling board to release lock.
	UnlockRequest(board, lock int) []byte
	// Decode finds the first reply in b. It returns the reply and n, how
	// many bytes of b it used up: any garbage before the reply, then the
	// reply.
	//
	// With ErrIncomplete, b holds no complete reply yet: the first n bytes
	// are garbage to drop, and the rest may become a reply when more bytes
	// come. With ErrChecksum or ErrFrame, what starts at b's first frame
	// start is not a reply: n counts the bytes up to and including that
	// start byte only, so that a reply starting inside it is still found.
	// n is never 0 unless b is empty or err is ErrIncomplete.
	Decode(b []byte) (r Reply, n int, err error)
}

// Reply is a board's answer: which board sent it and what its lock sensors
// say.
type Reply struct {
	// Board is the address of the board that answered.
	Board int
	// Locked has bit i set when lock i's sensor says shut and latched; a
	// clear bit is an open door.
	Locked uint64
}

// IsLocked reports whether lock's sensor says shut and latched.
func (r Reply) IsLocked(lock int) bool { return r.Locked&(1<<uint(lock)) != 0 }

// Decode errors. A frame that fails is skipped by its start byte only:
// Decode looks for the next one from the byte after it, so a torn or stray
// frame never swallows a good one behind it.
var (
	// ErrIncomplete: no complete reply yet; wait for more bytes.
	ErrIncomplete = errors.New("locker: incomplete reply")
	// ErrChecksum: a reply whose SUM does not match: it was corrupted.
	ErrChecksum = errors.New("locker: bad reply checksum")
	// ErrFrame: bytes from a frame start that are not a reply (another
	// command byte, no ETX where it belongs): garbage, or the echo of the
	// host's own request on a two-wire adapter.
	ErrFrame = errors.New("locker: not a reply frame")
)

// KRCU16 is the frame layout of KR-CU16-style boards (docs/locker.md):
//
//	request  02 · ADDR · CMD · 03 · SUM                      5 bytes
//	reply    02 · ADDR · 35 · L1 · L2 · S1 · S2 · 03 · SUM   9 bytes
//
// SUM is the low byte of the sum of the bytes before it. ADDR's high
// nibble is the board's address (0–15, its DIP switches) and its low
// nibble the lock (0–15): 0 in a status query (CMD 30), the lock to
// release in an unlock (CMD 31). A board answers both with a reply frame
// echoing the ADDR it was sent. L1 is locks 1–8 (bit 0 is lock 1), L2 locks
// 9–16, a set bit meaning shut and latched. S1 and S2, infrared item
// sensors on boards that have them, are not read.
type KRCU16 struct{}

// KR-CU16 bytes.
const (
	stx       byte = 0x02
	etx       byte = 0x03
	cmdStatus byte = 0x30
	cmdUnlock byte = 0x31
	cmdReply  byte = 0x35
	replyLen       = 9
)

// Locks is 16.
func (KRCU16) Locks() int { return 16 }

// Boards is 16: ADDR's high nibble.
func (KRCU16) Boards() int { return 16 }

// StatusRequest is 02 · board<<4 · 30 · 03 · SUM: 02 00 30 03 35 for board 0.
func (KRCU16) StatusRequest(board int) []byte {
	return request(byte(board&0x0F)<<4, cmdStatus)
}

// UnlockRequest is 02 · board<<4|lock · 31 · 03 · SUM: 02 11 31 03 47 for
// lock 1 (the second) on board 1.
func (KRCU16) UnlockRequest(board, lock int) []byte {
	return request(byte(board&0x0F)<<4|byte(lock&0x0F), cmdUnlock)
}

func request(addr, cmd byte) []byte {
	b := []byte{stx, addr, cmd, etx, 0}
	b[4] = sum(b[:4])
	return b
}

// sum is the low byte of the sum of b.
func sum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return s
}

// Decode finds the first reply frame in b (see Codec.Decode). A frame start
// is rejected as soon as the bytes already there rule out a reply, without
// waiting for all nine.
func (KRCU16) Decode(b []byte) (Reply, int, error) {
	start := bytes.IndexByte(b, stx)
	if start < 0 {
		return Reply{}, len(b), ErrIncomplete
	}
	f := b[start:]
	switch {
	case len(f) > 2 && f[2] != cmdReply, len(f) > 7 && f[7] != etx:
		return Reply{}, start + 1, ErrFrame
	case len(f) < replyLen:
		return Reply{}, start, ErrIncomplete
	case sum(f[:replyLen-1]) != f[replyLen-1]:
		return Reply{}, start + 1, ErrChecksum
	}
	return Reply{
		Board:  int(f[1] >> 4),
		Locked: uint64(f[3]) | uint64(f[4])<<8,
	}, start + replyLen, nil
}
