package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"onecard/firmware-sim/reader"
	"onecard/fleet/proto"
	"onecard/passes/passcode"
)

func TestReadersUsage(t *testing.T) {
	checkUsage(t, []usageCase{
		{[]string{"--help"}, 0, "readers"},
		{[]string{"readers", "--help"}, 0, "power-loss ID"},
		{[]string{"readers", "--site", "s1", "--zone", "gate"}, 2, "--broker is required"},
		{[]string{"readers", "--broker", "tcp://x:1", "--zone", "gate"}, 2, "--site"},
		{[]string{"readers", "--broker", "tcp://x:1", "--site", "s1"}, 2, "--zone"},
		{[]string{"readers", "--broker", "tcp://x:1", "--site", "s1", "--zone", "gate", "--count", "0"}, 2, "--count"},
		{[]string{"readers", "--broker", "tcp://x:1", "--site", "s1", "--zone", "gate", "--id-prefix", "R"}, 2, "--id-prefix"},
		{[]string{"readers", "--broker", "tcp://x:1", "--site", "s1", "--zone", "gate", "--zones", "a,B"}, 2, "--zones"},
		{[]string{"readers", "--broker", "tcp://x:1", "--site", "s1", "--zone", "gate", "--secret-file", "/nonexistent"}, 2, "--secret-file"},
	})
}

// startBroker runs a mochi broker that lets everyone in, on a free port.
func startBroker(t testing.TB) string {
	t.Helper()
	s := mochi.New(&mochi.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := s.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "tcp", Address: "127.0.0.1:0"})
	if err := s.AddListener(l); err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeBroker(t, s) })
	return "tcp://" + l.Address()
}

// closeBroker closes a mochi broker once its clients are gone. Close can
// deadlock when a client leaves at the same moment (Clients.GetByListener
// takes its read lock twice: mochi-mqtt/server#488), so it is given a
// while and then abandoned rather than hanging the test.
func closeBroker(t testing.TB, s *mochi.Server) {
	settled := func() bool {
		for _, cl := range s.Clients.GetAll() {
			if !cl.Closed() || cl.Properties.Clean {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(wait); !settled() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	done := make(chan struct{})
	go func() {
		s.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(wait):
		t.Log("mochi's Close is stuck (mochi-mqtt/server#488): abandoned")
	}
}

// watchStates reports every device state of site s1 as "id state session".
func watchStates(t *testing.T, broker string) <-chan string {
	t.Helper()
	ch := make(chan string, 100)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID("watcher").SetProtocolVersion(4))
	if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("watcher: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	topics := proto.Topics{Site: "s1"}
	tok := c.Subscribe(topics.Device("+", proto.KindState), 1, func(_ mqtt.Client, m mqtt.Message) {
		tp, _ := topics.Parse(m.Topic())
		st, err := proto.Decode[proto.State](m.Payload())
		if err != nil {
			t.Errorf("state %s: %v", m.Payload(), err)
			return
		}
		ch <- fmt.Sprintf("%s %s %d", tp.Device, st.State, st.Session)
	})
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("watcher subscribe: %v", tok.Error())
	}
	return ch
}

// collect waits until every one of want has been seen on ch.
func collect(t *testing.T, ch <-chan string, want ...string) {
	t.Helper()
	missing := map[string]bool{}
	for _, w := range want {
		missing[w] = true
	}
	deadline := time.After(wait)
	for len(missing) > 0 {
		select {
		case s := <-ch:
			delete(missing, s)
		case <-deadline:
			t.Fatalf("never seen: %v", missing)
		}
	}
}

// onecard-sim readers in a process of its own: three readers birth, answer
// the console, and say they go offline at quit.
func TestProcessReaders(t *testing.T) {
	broker := startBroker(t)
	states := watchStates(t, broker)
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets")
	os.WriteFile(secrets, []byte("# id secret\ngate-1 s3cret-1\ngate-2 s3cret-2\ngate-3 s3cret-3\n"), 0o600)

	cmd := exec.Command(os.Args[0], "readers", "--broker", broker, "--site", "s1", "--zone", "gate", "--count", "3",
		"--id-prefix", "gate-", "--secret-file", secrets, "--state-dir", filepath.Join(dir, "state"))
	cmd.Env = append(os.Environ(), asMain+"=1", "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
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
	out := make(chan string, 100)
	exited := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			out <- sc.Text()
		}
		close(out)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("onecard-sim stderr:\n%s", stderr.String())
		}
	})

	if first := next(t, out); first != "ready 3 readers on "+broker {
		t.Fatalf("first line %q", first)
	}
	collect(t, states, "gate-1 online 1", "gate-2 online 1", "gate-3 online 1")
	say := func(cmd string) string {
		t.Helper()
		io.WriteString(stdin, cmd+"\n")
		return next(t, out)
	}
	if got := say("tap gate-2 04A23B1C"); got != "gate-2 04A23B1C denied unknown" {
		t.Errorf("tap: %q", got)
	}
	if got := say("power-loss gate-3"); got != "gate-3 power-loss" {
		t.Errorf("power-loss: %q", got)
	}
	collect(t, states, "gate-3 offline 1", "gate-3 online 2")
	if got := say("tap gate-9 04A23B1C"); !strings.HasPrefix(got, `error: no reader "gate-9"`) {
		t.Errorf("tap on a reader that is not there: %q", got)
	}
	if got := say("status gate-2"); !strings.HasPrefix(got, "gate-2 online=true session=1 clock=ok applied=gate:0 pending=1 events=1") {
		t.Errorf("status: %q", got)
	}
	if got := next(t, out); !strings.HasPrefix(got, "total readers=1 online=1 pending=1") {
		t.Errorf("status total: %q", got)
	}
	io.WriteString(stdin, "quit\n")
	collect(t, states, "gate-1 offline 1", "gate-2 offline 1", "gate-3 offline 2")
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("quit did not stop it")
	}
	for _, id := range []string{"gate-1", "gate-2", "gate-3"} {
		if _, err := os.Stat(filepath.Join(dir, "state", id+".json")); err != nil {
			t.Errorf("state of %s: %v", id, err)
		}
	}
}

// The gate-terminal commands, on a reader whose network is down: it
// decides itself, and without pass keys it says it cannot check a code.
func TestReadersConsolePasses(t *testing.T) {
	broker := startBroker(t)
	f, err := reader.StartReaders(context.Background(), []reader.Options{{Broker: broker, Site: "s1", ID: "gate-1", Zone: "gate"}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	k, err := passcode.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	from := time.Now().Truncate(time.Minute)
	code, err := passcode.Sign(k, passcode.Claims{Pass: "2026-000123", Gate: "gate", NotBefore: from, NotAfter: from.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	c := &readersConsole{fleet: f, out: &out}
	for _, tc := range []struct{ line, want string }{
		{"offline gate-1", "gate-1 offline"},
		{"scan gate-1 2026-000123", "gate-1 scan 1 malformed pass=- offline=true"},
		{"scan gate-1 " + code, "gate-1 scan 2 offline_no_keys pass=- offline=true"},
		{"release gate-1 " + code + " 0042", "gate-1 release queued"},
		{"release gate-1 " + code + " 0042 粤B12345", "gate-1 release queued"},
		{"release gate-1 " + code + " 123456789", "error: reader gate-1: pass_release: "},
		{"mismatch gate-1 " + code, "gate-1 mismatch queued"},
		{"scan gate-1", "error: usage: scan ID TEXT"},
		{"status gate-1", " pending=5 events=5 relay=0 "}, // (the session depends on when the network went down)
	} {
		out.Reset()
		c.do(tc.line)
		if got := strings.SplitN(out.String(), "\n", 2)[0]; !strings.Contains(got, tc.want) {
			t.Errorf("%.40s: %q, want %q", tc.line, got, tc.want)
		}
	}
}
