package firmwaresim

import (
	"context"
	"io"
	"time"
)

// ServeLine runs a simulator's receive loop on rw until ctx is done (it
// then returns ctx's error) or receive returns (its error). When ctx ends,
// it sets a past deadline on rw if rw has SetDeadline or SetReadDeadline,
// so that a read in progress returns and receive with it before ServeLine
// does; otherwise that read holds receive's goroutine until rw is closed.
func ServeLine(ctx context.Context, rw io.ReadWriter, receive func(ctx context.Context, rw io.ReadWriter) error) error {
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	unblocked := UnblockReads(ctx, rw)

	readErr := make(chan error, 1)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		readErr <- receive(ctx, rw)
	}()

	var err error
	select {
	case <-ctx.Done():
	case err = <-readErr:
	}
	cancel()
	if unblocked() {
		<-readerDone
	}
	if parent.Err() != nil {
		return parent.Err()
	}
	return err
}

// UnblockReads arranges for a read of rw in progress to return when ctx
// ends, by setting a past deadline on rw if it has SetDeadline or
// SetReadDeadline. The function returned waits until ctx has ended and
// that is done, and reports whether rw could be unblocked so (a goroutine
// reading it can then be waited for; otherwise it returns only when rw is
// closed).
func UnblockReads(ctx context.Context, rw io.Reader) (wait func() bool) {
	done := make(chan struct{})
	var can bool
	switch rw.(type) {
	case interface{ SetDeadline(time.Time) error }, interface{ SetReadDeadline(time.Time) error }:
		can = true
	}
	context.AfterFunc(ctx, func() {
		defer close(done)
		switch d := rw.(type) {
		case interface{ SetDeadline(time.Time) error }:
			d.SetDeadline(time.Now())
		case interface{ SetReadDeadline(time.Time) error }:
			d.SetReadDeadline(time.Now())
		}
	})
	return func() bool {
		<-done
		return can
	}
}
