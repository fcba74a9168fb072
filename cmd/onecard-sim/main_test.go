package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tarm/serial"

	"onecard/devices/pn532"
)

// With this variable set, the test binary is onecard-sim itself: the
// subprocess tests re-execute it.
const asMain = "ONECARD_SIM_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMain) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

const wait = 5 * time.Second

var (
	gfvReq  = []byte{0x00, 0x00, 0xFF, 0x02, 0xFE, 0xD4, 0x02, 0x2A, 0x00}
	gfvResp = []byte{0x03, 0x32, 0x01, 0x06, 0x07}
)

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  []string // in stdout, or stderr when code ≠ 0
	}{
		{[]string{"--help"}, 0, []string{"pn532", "SIGTERM", "--exit-on-eof"}},
		{[]string{"pn532", "--help"}, 0, []string{"--pty-link", "place UID", "fault power-loss", "remove-on-write", "-rf-latency", "quit"}},
		{nil, 2, []string{"Simulators:"}},
		{[]string{"printer9000"}, 2, []string{`no simulator "printer9000"`}},
		{[]string{"pn532"}, 2, []string{"--pty-link is required"}},
		{[]string{"pn532", "--pty-link", "x", "--card", "zz"}, 2, []string{"--card"}},
		{[]string{"pn532", "--pty-link", "x", "--card", "0102"}, 2, []string{"4 or 7 bytes"}},
		{[]string{"pn532", "--bogus"}, 2, []string{"bogus"}},
	} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), tc.args, strings.NewReader(""), &out, &errOut)
		text := out.String()
		if code != 0 {
			text = errOut.String()
		}
		if code != tc.code {
			t.Errorf("%q: exit %d, want %d\n%s%s", tc.args, code, tc.code, out.String(), errOut.String())
		}
		for _, w := range tc.out {
			if !strings.Contains(text, w) {
				t.Errorf("%q: output lacks %q:\n%s", tc.args, w, text)
			}
		}
	}
}

// lines delivers a reader's lines on a channel.
func lines(r io.Reader) <-chan string {
	ch := make(chan string, 100)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}

func next(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case l, ok := <-ch:
		if !ok {
			t.Fatal("output ended")
		}
		return l
	case <-time.After(wait):
		t.Fatal("no output")
	}
	return ""
}

// usageCase is a command line and what it must give: an exit code and a
// text in stdout, or in stderr when the code is not 0.
type usageCase struct {
	args []string
	code int
	out  string
}

func checkUsage(t *testing.T, cases []usageCase) {
	t.Helper()
	for _, tc := range cases {
		var out, errOut bytes.Buffer
		code := run(context.Background(), tc.args, strings.NewReader(""), &out, &errOut)
		text := out.String()
		if code != 0 {
			text = errOut.String()
		}
		if code != tc.code || !strings.Contains(text, tc.out) {
			t.Errorf("%q: exit %d, want %d with %q:\n%s%s", tc.args, code, tc.code, tc.out, out.String(), errOut.String())
		}
	}
}

// startConsole runs a simulator command in process with its console on
// pipes, checks that it prints the pty's slave first and links it at link,
// and returns its stdin, its output lines, its exit code to come, and say,
// which sends a console command and returns the answer's line.
func startConsole(t *testing.T, link string, args ...string) (stdin io.WriteCloser, out <-chan string, done <-chan int, say func(cmd string) string) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	t.Cleanup(func() { inW.Close() })
	exit := make(chan int, 1)
	go func() {
		exit <- run(context.Background(), args, inR, outW, io.Discard)
		outW.Close()
	}()
	lines := lines(outR)
	if slave := next(t, lines); !strings.HasPrefix(slave, "/dev/") {
		t.Fatalf("first line %q, want the slave's path", slave)
	}
	if target, err := os.Readlink(link); err != nil || !strings.HasPrefix(target, "/dev/") {
		t.Fatalf("link: %q %v", target, err)
	}
	say = func(cmd string) string {
		t.Helper()
		if _, err := io.WriteString(inW, cmd+"\n"); err != nil {
			t.Fatal(err)
		}
		return next(t, lines)
	}
	return inW, lines, exit, say
}

// consoleCase is a console command and what its answer holds.
type consoleCase struct{ cmd, want string }

// checkSays sends each command with say and checks its answer.
func checkSays(t *testing.T, say func(cmd string) string, cases []consoleCase) {
	t.Helper()
	for _, tc := range cases {
		if got := say(tc.cmd); !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want %q…", tc.cmd, got, tc.want)
		}
	}
}

// quitConsole ends a console test: a comment and a blank line are passed
// over, quit stops the simulator with exit status 0.
func quitConsole(t *testing.T, stdin io.Writer, done <-chan int) {
	t.Helper()
	io.WriteString(stdin, "# a comment\n\nquit\n")
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
	case <-time.After(wait):
		t.Fatal("quit did not stop it")
	}
}

// checkLinkGone checks that a stopped simulator removed its pty link.
func checkLinkGone(t *testing.T, link string) {
	t.Helper()
	if _, err := os.Lstat(link); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("link left behind: %v", err)
	}
}

// TestConsoleEndsCleanly: when ctx ends, serve (on a context made from
// it) ends with context.Canceled at the same moment; the console returns
// nil whichever of the two it sees first (CI once saw the simulator exit 1
// after SIGTERM for this).
func TestConsoleEndsCleanly(t *testing.T) {
	for range 64 {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		served := make(chan error, 1)
		served <- ctx.Err()
		if err := console(ctx, strings.NewReader(""), false, served, func(string) bool { return false }); err != nil {
			t.Fatalf("console after ctx ended: %v", err)
		}
	}
	served := make(chan error, 1)
	served <- errors.New("pty gone")
	if err := console(context.Background(), strings.NewReader(""), false, served, func(string) bool { return false }); err == nil || err.Error() != "pty gone" {
		t.Fatalf("serve's own failure: %v", err)
	}
}

// TestConsole drives the commands in process.
func TestConsole(t *testing.T) {
	link := filepath.Join(t.TempDir(), "pn532")
	inW, out, done, say := startConsole(t, link, "pn532", "--pty-link", link, "--baud", "0", "--card", "04:a1:b2:c3")
	checkSays(t, say, []consoleCase{
		{"status", "card=04A1B2C3 selected=false auth-sector=-1 key=- asleep=false retries=FF baud=0 pty=/dev/"},
		{"remove", "removed"},
		{"status", "card=none"},
		{"place 04112233445566", "placed 04112233445566"},
		{"place 04 A1 B2 C3", "placed 04A1B2C3"},
		{"place 0102", "error: place: a UID has 4 or 7 bytes, not 2"},
		{"fault drop-ack", "fault drop-ack armed"},
		{"fault corrupt", "fault corrupt armed"},
		{"fault garbage DEAD", "fault garbage armed"},
		{"fault garbage", "fault garbage armed"},
		{"fault remove-on-write", "fault remove-on-write armed"},
		{"fault power-loss", "fault power-loss armed"},
		{"status", "asleep=true"},
		{"fault melt", `error: no fault "melt"`},
		{"fly", `error: unknown command "fly"`},
		{"help", "commands: place UID"},
		{"dump 99", `error: dump: no sector "99"`},
		{"dump 1", " 1/ 4  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"},
	})
	for _, want := range []string{" 1/ 5", " 1/ 6", " 1/ 7  FF FF FF FF FF FF FF 07 80 69 FF FF FF FF FF FF"} {
		if got := next(t, out); !strings.HasPrefix(got, want) {
			t.Errorf("dump: %q, want %q…", got, want)
		}
	}
	quitConsole(t, inW, done)
	checkLinkGone(t, link)
}

// portReader reads a tarm/serial port byte by byte until a deadline: a read
// that times out there returns (0, io.EOF), which means "no data yet".
type portReader struct {
	r        io.Reader
	buf      []byte
	deadline time.Time
}

func (p *portReader) ReadByte() (byte, error) {
	for len(p.buf) == 0 {
		if time.Now().After(p.deadline) {
			return 0, os.ErrDeadlineExceeded
		}
		b := make([]byte, 64)
		n, err := p.r.Read(b)
		p.buf = b[:n]
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
	}
	b := p.buf[0]
	p.buf = p.buf[1:]
	return b, nil
}

// getFirmwareVersion does the golden exchange over a real serial port.
func getFirmwareVersion(t *testing.T, link string) {
	t.Helper()
	port, err := serial.OpenPort(&serial.Config{Name: link, Baud: 115200, ReadTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	if _, err := port.Write(gfvReq); err != nil {
		t.Fatal(err)
	}
	r := &portReader{r: port, deadline: time.Now().Add(wait)}
	if f, err := pn532.ReadFrame(r); err != nil || f.Kind != pn532.Ack {
		t.Fatalf("ACK: %v %v", f.Kind, err)
	}
	if f, err := pn532.ReadFrame(r); err != nil || f.TFI != pn532.PN532ToHost || !bytes.Equal(f.Data, gfvResp) {
		t.Fatalf("response: %02X % X %v", f.TFI, f.Data, err)
	}
}

// terminate sends SIGTERM to a simulator started by startSim and checks
// that it stops with exit status 0.
func terminate(t *testing.T, cmd *exec.Cmd, exited <-chan error) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("SIGTERM did not stop it")
	}
}

// startSim starts onecard-sim (this test binary, re-executed) and returns
// once it has printed the slave's path; stdin is its standard input (a pipe
// if withStdin, else /dev/null), exited reports its exit. The
// process is killed at the end of the test if it is still running.
func startSim(t *testing.T, withStdin bool, args ...string) (cmd *exec.Cmd, stdin io.WriteCloser, stdout <-chan string, exited <-chan error) {
	t.Helper()
	cmd = exec.Command(os.Args[0], args...)
	// The race detector sleeps 1 s at exit unless told not to.
	cmd.Env = append(os.Environ(), asMain+"=1", "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	if withStdin { // otherwise stdin is /dev/null
		var err error
		if stdin, err = cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := make(chan string, 1000)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			select {
			case out <- sc.Text():
			default: // nobody listens: never block the child
			}
		}
	}()
	ch := make(chan error, 1)
	reaped := make(chan struct{})
	go func() {
		defer close(reaped)
		<-drained // Wait only after stdout is read to its end
		ch <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-reaped:
			if t.Failed() {
				t.Logf("onecard-sim stderr:\n%s", stderr.String())
			}
		case <-time.After(wait):
			t.Error("onecard-sim not reaped")
		}
	})
	select {
	case first, ok := <-out:
		if !ok || !strings.HasPrefix(first, "/dev/") {
			t.Fatalf("first line %q, want the slave's path", first)
		}
	case <-time.After(wait):
		t.Fatal("onecard-sim printed nothing")
	}
	return cmd, stdin, out, ch
}

func TestProcessSerialRoundTripAndSIGTERM(t *testing.T) {
	link := filepath.Join(t.TempDir(), "encoder")
	cmd, stdin, out, exited := startSim(t, true, "pn532", "--pty-link", link)
	defer stdin.Close()
	getFirmwareVersion(t, link)
	// Commands on stdin act on the running simulator.
	io.WriteString(stdin, "fault drop-ack\n")
	if got := next(t, out); got != "fault drop-ack armed" {
		t.Fatalf("fault drop-ack: %q", got)
	}
	port, err := serial.OpenPort(&serial.Config{Name: link, Baud: 115200, ReadTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	port.Write(gfvReq)
	r := &portReader{r: port, deadline: time.Now().Add(300 * time.Millisecond)}
	if f, err := pn532.ReadFrame(r); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("after fault drop-ack: %v %v, want silence", f.Kind, err)
	}
	port.Close()
	getFirmwareVersion(t, link) // the driver's resend
	terminate(t, cmd, exited)
	checkLinkGone(t, link)
}

// A daemon with stdin from /dev/null keeps serving; --exit-on-eof stops.
func TestProcessStdinEOF(t *testing.T) {
	link := filepath.Join(t.TempDir(), "encoder")
	cmd, _, _, exited := startSim(t, false, "pn532", "--pty-link", link, "--card", "04A1B2C3")
	select {
	case err := <-exited:
		t.Fatalf("exited at EOF of stdin: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	getFirmwareVersion(t, link)
	cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGINT: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("SIGINT did not stop it")
	}

	link2 := filepath.Join(t.TempDir(), "encoder")
	_, _, _, exited = startSim(t, false, "pn532", "--pty-link", link2, "--exit-on-eof")
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("--exit-on-eof: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("--exit-on-eof did not stop it")
	}
	if _, err := os.Lstat(link2); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("link left behind: %v", err)
	}
}
