package scanner

import (
	"context"
	"errors"
	"sync"
)

// Feed passes a scanner's codes to whoever is watching (the desk's
// registration page); with nobody watching, a code goes nowhere. The zero
// Feed is ready to use.
type Feed struct {
	mu   sync.Mutex
	subs map[chan string]struct{}
}

// Watch returns a channel of the codes published from now on and a
// function to stop watching.
func (f *Feed) Watch() (<-chan string, func()) {
	ch := make(chan string, 64)
	f.mu.Lock()
	if f.subs == nil {
		f.subs = map[chan string]struct{}{}
	}
	f.subs[ch] = struct{}{}
	f.mu.Unlock()
	return ch, func() {
		f.mu.Lock()
		delete(f.subs, ch)
		f.mu.Unlock()
	}
}

// Publish hands code to every watcher. A watcher that does not read misses
// codes once its channel is full (the clerk can retype); Publish never
// waits.
func (f *Feed) Publish(code string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		select {
		case ch <- code:
		default:
		}
	}
}

// Watchers counts who is watching.
func (f *Feed) Watchers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

// Read publishes sc's codes, normalised, until sc fails or ctx ends, and
// returns why it stopped. A line the scanner rejected is passed to
// rejected (if not nil) and skipped.
func (f *Feed) Read(ctx context.Context, sc *Scanner, rejected func(error)) error {
	for {
		s, err := sc.Next(ctx)
		switch {
		case errors.Is(err, ErrRejected):
			if rejected != nil {
				rejected(err)
			}
		case err != nil:
			return err
		default:
			f.Publish(Normalize(s.Code))
		}
	}
}
