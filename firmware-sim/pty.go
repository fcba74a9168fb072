//go:build unix

// Package firmwaresim holds what the device simulators share: a pty whose
// slave a driver opens like a real serial port. The simulators themselves
// live in subpackages (pn532, …). Unix only.
package firmwaresim

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/creack/pty"
)

// PTY is the device end (master) of a pseudo-terminal; drivers open the
// slave, by its device name or through a symlink, like a serial port. It
// reads and writes the master and supports deadlines, so a simulator's
// Serve can stop reading it.
type PTY struct {
	master *os.File
	// slave stays open for the PTY's life: the master then never reads EIO
	// while no driver has the port open, and the raw mode set here stays.
	slave *os.File
	link  string
}

// OpenPTY opens a pty with its slave in raw mode and, if link is not empty,
// points the symlink link at the slave. An existing symlink at link is taken
// for a stale one (left by a simulator that was killed) and replaced;
// anything else there is an error.
func OpenPTY(link string) (*PTY, error) {
	ptmx, slave, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("firmwaresim: open pty: %w", err)
	}
	master, err := pollable(ptmx)
	if err != nil {
		ptmx.Close()
		slave.Close()
		return nil, fmt.Errorf("firmwaresim: open pty: %w", err)
	}
	p := &PTY{master: master, slave: slave}
	if err := makeRaw(slave); err != nil {
		p.Close()
		return nil, fmt.Errorf("firmwaresim: raw mode on %s: %w", slave.Name(), err)
	}
	if link != "" {
		if err := symlink(slave.Name(), link); err != nil {
			p.Close()
			return nil, err
		}
		p.link = link
	}
	return p, nil
}

// pollable returns f as a file in non-blocking mode, registered with the
// runtime poller, so that deadlines work and Close interrupts a Read.
// pty.Open leaves the master in blocking mode (it calls Fd), where a Read
// holds its goroutine until data comes.
func pollable(f *os.File) (*os.File, error) {
	fd, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		return nil, err
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	f.Close()
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// symlink points link at target, atomically replacing a symlink there.
func symlink(target, link string) error {
	fi, err := os.Lstat(link)
	switch {
	case err == nil && fi.Mode()&fs.ModeSymlink == 0:
		return fmt.Errorf("firmwaresim: %s exists and is not a symlink: not replacing it", link)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("firmwaresim: %w", err)
	}
	tmp := filepath.Join(filepath.Dir(link), fmt.Sprintf(".%s.%d.tmp", filepath.Base(link), os.Getpid()))
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("firmwaresim: %w", err)
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("firmwaresim: %w", err)
	}
	return nil
}

// Name is the slave's device path, e.g. /dev/pts/3.
func (p *PTY) Name() string { return p.slave.Name() }

// Link is the symlink to the slave, "" if none.
func (p *PTY) Link() string { return p.link }

// Read reads what the driver wrote.
func (p *PTY) Read(b []byte) (int, error) { return p.master.Read(b) }

// Write sends bytes to the driver.
func (p *PTY) Write(b []byte) (int, error) { return p.master.Write(b) }

// SetDeadline sets the master's read and write deadlines.
func (p *PTY) SetDeadline(t time.Time) error { return p.master.SetDeadline(t) }

// Close removes the symlink, if it still points at this pty, and closes both
// ends.
func (p *PTY) Close() error {
	var errs []error
	if p.link != "" {
		if target, err := os.Readlink(p.link); err == nil && target == p.slave.Name() {
			if err := os.Remove(p.link); err != nil {
				errs = append(errs, err)
			}
		}
	}
	errs = append(errs, p.master.Close(), p.slave.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("firmwaresim: close pty: %w", err)
	}
	return nil
}
