package payterm

import (
	"errors"
	"fmt"
)

// Frame delimiters (docs/payterm.md, "Frames").
const (
	STX byte = 0x02
	ETX byte = 0x03
)

// Frame sizes. LEN is one byte and counts TYPE, SEQ and the body, so a
// body holds at most 253 bytes and a frame is at most 260: a damaged LEN
// can never make a receiver wait for more than that.
const (
	MaxBody  = 253
	Overhead = 7 // STX, LEN, TYPE, SEQ, CRC (2), ETX
	MaxFrame = MaxBody + Overhead
)

// Type is a frame's message type.
type Type byte

// The message types. Requests go from the host to the terminal, responses
// from the terminal to the host; ACK and NAK go both ways.
const (
	TypeACK Type = 0x06
	TypeNAK Type = 0x15

	TypeSale   Type = 0x10
	TypeQuery  Type = 0x11
	TypeCancel Type = 0x12
	TypeStatus Type = 0x13

	TypeApproved    Type = 0x20
	TypeDeclined    Type = 0x21
	TypeVoided      Type = 0x22
	TypeInProgress  Type = 0x23
	TypeNotFound    Type = 0x24
	TypeBusy        Type = 0x25
	TypeError       Type = 0x26
	TypeStatusReply Type = 0x27
)

var typeNames = map[Type]string{
	TypeACK: "ACK", TypeNAK: "NAK",
	TypeSale: "SALE", TypeQuery: "QUERY", TypeCancel: "CANCEL", TypeStatus: "STATUS",
	TypeApproved: "APPROVED", TypeDeclined: "DECLINED", TypeVoided: "VOIDED",
	TypeInProgress: "IN_PROGRESS", TypeNotFound: "NOT_FOUND", TypeBusy: "BUSY",
	TypeError: "ERROR", TypeStatusReply: "STATUS_REPLY",
}

// String is the type's name in docs/payterm.md, e.g. "SALE".
func (t Type) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("type(0x%02X)", byte(t))
}

// Request reports whether t is a request (host to terminal).
func (t Type) Request() bool { return t >= TypeSale && t <= TypeStatus }

// Response reports whether t is a response (terminal to host).
func (t Type) Response() bool { return t >= TypeApproved && t <= TypeStatusReply }

// Link reports whether t is ACK or NAK, the link-level frames that are
// never themselves acknowledged.
func (t Type) Link() bool { return t == TypeACK || t == TypeNAK }

// Frame is one frame: its type, its sequence number and its body, not yet
// parsed (Unmarshal does that).
type Frame struct {
	Type Type
	Seq  byte
	Body []byte
}

// Codec errors. A damaged frame (ErrChecksum, ErrFrameEnd, ErrLength) is
// skipped by its STX only: Decode looks for the next frame from the byte
// after it, so a torn frame never swallows a good one behind it.
var (
	// ErrIncomplete: no complete frame yet; wait for more bytes.
	ErrIncomplete = errors.New("payterm: incomplete frame")
	// ErrChecksum: the CRC does not match: the frame was corrupted.
	ErrChecksum = errors.New("payterm: bad frame checksum")
	// ErrFrameEnd: the byte after the CRC is not ETX.
	ErrFrameEnd = errors.New("payterm: no ETX where the frame should end")
	// ErrLength: LEN is below 2, too short for TYPE and SEQ.
	ErrLength = errors.New("payterm: bad frame length")
	// ErrTooLong: a body over MaxBody bytes (Encode).
	ErrTooLong = errors.New("payterm: frame body too long")
)

// CRC16 is CRC-16/CCITT-FALSE: polynomial 0x1021, initial value 0xFFFF,
// no reflection, no final XOR (check value 0x29B1 for "123456789").
func CRC16(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, c := range b {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// Encode builds a frame: STX, LEN, TYPE, SEQ, body, CRC (big-endian, over
// LEN to the end of the body), ETX.
func Encode(f Frame) ([]byte, error) {
	if len(f.Body) > MaxBody {
		return nil, ErrTooLong
	}
	out := make([]byte, 0, len(f.Body)+Overhead)
	out = append(out, STX, byte(len(f.Body)+2), byte(f.Type), f.Seq)
	out = append(out, f.Body...)
	crc := CRC16(out[1:])
	return append(out, byte(crc>>8), byte(crc), ETX), nil
}

// Decode finds the first frame in b. It returns the frame and n, how many
// bytes of b it used up: any garbage before the frame, then the frame.
//
// With ErrIncomplete, b holds no complete frame yet: the first n bytes are
// garbage to drop, and the rest (from an STX) may become a frame when more
// bytes come. With ErrChecksum, ErrFrameEnd or ErrLength, the frame at the
// first STX is damaged: n counts the bytes up to and including that STX
// only, and f carries the TYPE and SEQ read from it (for a NAK; they may
// themselves be damaged).
//
// When the frame at the first STX is still incomplete but a later STX
// starts a complete frame whose CRC and ETX check, the bytes before that
// later STX are taken for garbage (a stray STX, or a torn frame whose LEN
// claims bytes that will never come) and the later frame is returned.
func Decode(b []byte) (f Frame, n int, err error) {
	start := indexSTX(b, 0)
	if start < 0 {
		return Frame{}, len(b), ErrIncomplete
	}
	f, size, err := decodeAt(b[start:])
	switch {
	case err == nil:
		return f, start + size, nil
	case err != ErrIncomplete:
		return f, start + 1, err
	}
	for i := indexSTX(b, start+1); i >= 0; i = indexSTX(b, i+1) {
		if f, size, err := decodeAt(b[i:]); err == nil {
			return f, i + size, nil
		}
	}
	return Frame{}, start, ErrIncomplete
}

func indexSTX(b []byte, from int) int {
	for i := from; i < len(b); i++ {
		if b[i] == STX {
			return i
		}
	}
	return -1
}

// decodeAt decodes the frame whose STX is b[0]; size is its length.
func decodeAt(b []byte) (f Frame, size int, err error) {
	if len(b) < 2 {
		return Frame{}, 0, ErrIncomplete
	}
	n := int(b[1])
	if n < 2 {
		return Frame{}, 0, ErrLength
	}
	size = n + 5
	if len(b) < size {
		return Frame{}, 0, ErrIncomplete
	}
	f = Frame{Type: Type(b[2]), Seq: b[3]}
	crc := uint16(b[2+n])<<8 | uint16(b[3+n])
	if CRC16(b[1:2+n]) != crc {
		return f, 0, ErrChecksum
	}
	if b[4+n] != ETX {
		return f, 0, ErrFrameEnd
	}
	f.Body = append([]byte(nil), b[4:2+n]...)
	return f, size, nil
}
