package pn532

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

// Golden vectors from the datasheet (PROTOCOLS.md).
func TestGoldenFrames(t *testing.T) {
	got, err := Encode(HostToPN532, []byte{0x02})
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0x00, 0x00, 0xFF, 0x02, 0xFE, 0xD4, 0x02, 0x2A, 0x00}; !bytes.Equal(got, want) {
		t.Fatalf("GetFirmwareVersion = % X, want % X", got, want)
	}
	sam, _ := Encode(HostToPN532, []byte{0x14, 0x01, 0x14, 0x00})
	if want := []byte{0x00, 0x00, 0xFF, 0x05, 0xFB, 0xD4, 0x14, 0x01, 0x14, 0x00, 0x03, 0x00}; !bytes.Equal(sam, want) {
		t.Fatalf("SAMConfiguration = % X, want % X", sam, want)
	}
	for _, tc := range []struct {
		in   []byte
		kind Kind
	}{{ACK, Ack}, {NACK, Nack}, {ErrorFrame, AppError}} {
		f, err := ReadFrame(bytes.NewReader(tc.in))
		if err != nil || f.Kind != tc.kind {
			t.Errorf("% X: %v %v, want %v", tc.in, f.Kind, err, tc.kind)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for n := 0; n <= MaxData; n++ {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i*7 + n)
		}
		enc, err := Encode(PN532ToHost, data)
		if err != nil {
			t.Fatal(err)
		}
		f, err := ReadFrame(bytes.NewReader(enc))
		if err != nil || f.Kind != Normal || f.TFI != PN532ToHost || !bytes.Equal(f.Data, data) {
			t.Fatalf("n=%d: %+v %v", n, f, err)
		}
	}
	if _, err := Encode(HostToPN532, make([]byte, MaxData+1)); !errors.Is(err, ErrTooLong) {
		t.Fatalf("oversize frame: %v", err)
	}
}

// TestResync: garbage, a torn frame and a corrupted one before a good frame
// cost errors, never the good frame.
func TestResync(t *testing.T) {
	good, _ := Encode(PN532ToHost, []byte{0x03, 0x32, 0x01, 0x06, 0x07})
	torn := good[:6]
	bad := append([]byte(nil), good...)
	bad[8] ^= 0x40 // data byte: the DCS no longer matches
	badLen := append([]byte(nil), good...)
	badLen[4] ^= 0x01
	stream := bytes.Join([][]byte{{0xFF, 0x13, 0x00, 0x42}, torn, bad, badLen, ACK, good}, nil)
	r := bufio.NewReader(bytes.NewReader(stream))
	var kinds []string
	for {
		f, err := ReadFrame(r)
		if err == io.EOF {
			break
		}
		if err != nil {
			kinds = append(kinds, "err")
			continue
		}
		kinds = append(kinds, f.Kind.String())
		if f.Kind == Normal && !bytes.Equal(f.Data, []byte{0x03, 0x32, 0x01, 0x06, 0x07}) {
			t.Fatalf("wrong frame % X", f.Data)
		}
	}
	// The torn frame swallows bytes up to where its length runs out; what
	// matters is that the ACK or the good frame still arrive last.
	if len(kinds) == 0 || kinds[len(kinds)-1] != "normal" {
		t.Fatalf("frames read %v: the good frame was lost", kinds)
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add(ACK)
	f.Add(NACK)
	f.Add(ErrorFrame)
	gfv, _ := Encode(HostToPN532, []byte{0x02})
	f.Add(gfv)
	f.Add([]byte{0x00, 0xFF, 0xFF, 0xFF, 0x01, 0x00})
	f.Add([]byte{0x00, 0x00, 0xFF, 0x05, 0xFB, 0xD5, 0x41, 0x00, 0x01, 0x02, 0xE7, 0x00})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		for i := 0; i <= len(in); i++ {
			before := r.Len()
			fr, err := ReadFrame(r)
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return
			}
			if r.Len() >= before {
				t.Fatalf("ReadFrame made no progress")
			}
			if err == nil && fr.Kind == Normal {
				// A frame that decodes re-encodes to the same bytes.
				enc, err := Encode(fr.TFI, fr.Data)
				if err != nil || !bytes.Contains(in, enc[2:len(enc)-1]) {
					t.Fatalf("decoded %+v does not re-encode to bytes of the input", fr)
				}
			}
		}
	})
}
