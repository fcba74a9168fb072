// Package pn532 drives an NXP PN532 NFC controller over its high-speed UART
// (HSU): the frame codec and the commands a MIFARE Classic card encoder
// needs. It knows bytes, not business: what goes on a card is the cards
// package's concern.
package pn532

import (
	"errors"
	"fmt"
	"io"
)

// Frame identifiers: TFI of frames from the host and from the PN532.
const (
	HostToPN532 byte = 0xD4
	PN532ToHost byte = 0xD5
	// errorTFI marks the application-level error frame.
	errorTFI byte = 0x7F
)

// MaxData is the most a normal frame carries after its TFI.
const MaxData = 254

// The fixed frames.
var (
	ACK        = []byte{0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00}
	NACK       = []byte{0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00}
	ErrorFrame = []byte{0x00, 0x00, 0xFF, 0x01, 0xFF, 0x7F, 0x81, 0x00}
)

// Kind is what sort of frame was read.
type Kind int

// The kinds of frame.
const (
	Normal Kind = iota
	Ack
	Nack
	AppError // the PN532's syntax-error frame
)

func (k Kind) String() string {
	switch k {
	case Normal:
		return "normal"
	case Ack:
		return "ACK"
	case Nack:
		return "NACK"
	case AppError:
		return "error"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Frame is a decoded frame. Data follows the TFI: for a command or a
// response, the command code then its parameters.
type Frame struct {
	Kind Kind
	TFI  byte
	Data []byte
}

// Codec errors. A bad checksum means the frame was torn or corrupted; the
// next ReadFrame resynchronises on the next start code.
var (
	ErrLengthChecksum = errors.New("pn532: bad length checksum")
	ErrDataChecksum   = errors.New("pn532: bad data checksum")
	ErrExtended       = errors.New("pn532: extended frames are not supported")
	ErrTooLong        = errors.New("pn532: frame data too long")
)

// Encode builds a normal information frame: preamble, start code, LEN,
// LCS, TFI, data, DCS, postamble.
func Encode(tfi byte, data []byte) ([]byte, error) {
	if len(data) > MaxData {
		return nil, ErrTooLong
	}
	n := byte(len(data) + 1)
	out := make([]byte, 0, len(data)+8)
	out = append(out, 0x00, 0x00, 0xFF, n, -n, tfi)
	sum := tfi
	for _, b := range data {
		sum += b
	}
	out = append(out, data...)
	out = append(out, -sum, 0x00)
	return out, nil
}

// ReadFrame reads the next frame from r, skipping whatever comes before a
// start code (garbage, a postamble, the tail of a torn frame). It does not
// read a postamble after the frame: the next call skips it.
func ReadFrame(r io.ByteReader) (Frame, error) {
	if err := findStart(r); err != nil {
		return Frame{}, err
	}
	n, err := r.ReadByte()
	if err != nil {
		return Frame{}, err
	}
	lcs, err := r.ReadByte()
	if err != nil {
		return Frame{}, err
	}
	switch {
	case n == 0x00 && lcs == 0xFF:
		return Frame{Kind: Ack}, nil
	case n == 0xFF && lcs == 0x00:
		return Frame{Kind: Nack}, nil
	case n == 0xFF && lcs == 0xFF:
		return Frame{}, ErrExtended
	case n+lcs != 0, n == 0:
		// LEN 0 with LCS 0 sums right but cannot hold a TFI.
		return Frame{}, ErrLengthChecksum
	}
	body := make([]byte, int(n))
	for i := range body {
		if body[i], err = r.ReadByte(); err != nil {
			return Frame{}, err
		}
	}
	dcs, err := r.ReadByte()
	if err != nil {
		return Frame{}, err
	}
	sum := dcs
	for _, b := range body {
		sum += b
	}
	if sum != 0 {
		return Frame{}, ErrDataChecksum
	}
	if n == 1 && body[0] == errorTFI {
		return Frame{Kind: AppError, TFI: errorTFI}, nil
	}
	return Frame{Kind: Normal, TFI: body[0], Data: body[1:]}, nil
}

// findStart consumes bytes up to and including the start code 00 FF.
func findStart(r io.ByteReader) error {
	prev := byte(0x01)
	for {
		b, err := r.ReadByte()
		if err != nil {
			return err
		}
		if prev == 0x00 && b == 0xFF {
			return nil
		}
		prev = b
	}
}
