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

	unblocked := make(chan struct{})
	var canUnblock bool
	switch rw.(type) {
	case interface{ SetDeadline(time.Time) error }, interface{ SetReadDeadline(time.Time) error }:
		canUnblock = true
	}
	context.AfterFunc(ctx, func() {
		defer close(unblocked)
		switch d := rw.(type) {
		case interface{ SetDeadline(time.Time) error }:
			d.SetDeadline(time.Now())
		case interface{ SetReadDeadline(time.Time) error }:
			d.SetReadDeadline(time.Now())
		}
	})

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
	<-unblocked
	if canUnblock {
		<-readerDone
	}
	if parent.Err() != nil {
		return parent.Err()
	}
	return err
}
