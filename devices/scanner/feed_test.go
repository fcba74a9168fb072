package scanner_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"onecard/devices/scanner"
)

func TestFeed(t *testing.T) {
	var f scanner.Feed
	f.Publish("NOBODY") // nobody watching: goes nowhere
	a, stopA := f.Watch()
	b, stopB := f.Watch()
	if f.Watchers() != 2 {
		t.Fatalf("%d watchers", f.Watchers())
	}
	f.Publish("SF1")
	for _, ch := range []<-chan string{a, b} {
		if got := <-ch; got != "SF1" {
			t.Fatalf("got %q", got)
		}
	}
	stopB()
	// b is no longer fed; a watcher that does not read never holds up
	// Publish.
	for range 200 {
		f.Publish("SF2")
	}
	if len(b) != 0 || len(a) != cap(a) || f.Watchers() != 1 {
		t.Fatalf("after 200 codes: a holds %d of %d, b %d, %d watchers", len(a), cap(a), len(b), f.Watchers())
	}
	stopA()
	if f.Watchers() != 0 {
		t.Fatalf("%d watchers after both stopped", f.Watchers())
	}
}

// Read publishes the scanner's codes normalised, hands a rejected line
// over and goes on, and stops when the line ends.
func TestFeedRead(t *testing.T) {
	pr, pw := io.Pipe()
	sc := scanner.New(pr, nil)
	defer sc.Close()
	var f scanner.Feed
	codes, stop := f.Watch()
	defer stop()
	var rejected []error
	done := make(chan error, 1)
	go func() { done <- f.Read(context.Background(), sc, func(err error) { rejected = append(rejected, err) }) }()
	io.WriteString(pw, "sf1234567890123\r\n\x01\x02\r\nYT9876543210\r\n")
	for _, want := range []string{"SF1234567890123", "YT9876543210"} {
		select {
		case got := <-codes:
			if got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s", want)
		}
	}
	pw.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Read ended without an error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read did not end with the line")
	}
	if len(rejected) != 1 || !errors.Is(rejected[0], scanner.ErrRejected) {
		t.Fatalf("rejected: %v", rejected)
	}
}
