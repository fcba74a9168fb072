package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"onecard/gateway"
)

func TestGatewayUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  []string // in stdout, or stderr when code ≠ 0
	}{
		{[]string{"--help"}, 0, []string{"gateway", "docs/gateway.md"}},
		{[]string{"gateway", "--help"}, 0, []string{"--key-file", "pay TXN", "close TXN", "twice on|off", "late DURATION", "badsig on|off", "-listen", "-merchant-key-file", "-base-url", "quit"}},
		{[]string{"gateway"}, 2, []string{"--key-file is required"}},
		{[]string{"gateway", "--key-file", "k", "extra"}, 2, []string{`unexpected argument "extra"`}},
		{[]string{"gateway", "--key-file", "k", "--merchant", "a b"}, 2, []string{"--merchant"}},
		{[]string{"gateway", "--key-file", "k", "--base-url", "pay.example"}, 2, []string{"--base-url"}},
		{[]string{"gateway", "--key-file", "k", "--window", "0"}, 2, []string{"--window"}},
		{[]string{"gateway", "--key-file", "k", "--retry", "2s", "--retry-max", "1s"}, 2, []string{"--retry-max"}},
		{[]string{"gateway", "--key-file", "k", "--attempts", "0"}, 2, []string{"--attempts"}},
		{[]string{"gateway", "--bogus"}, 2, []string{"bogus"}},
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
	dir := t.TempDir()
	// A key file others can read is a failure, not a usage error; so is an
	// address taken.
	loose := filepath.Join(dir, "loose.pem")
	os.WriteFile(loose, gateway.EncodePrivateKey(gateway.GenerateKey()), 0o644)
	var errOut bytes.Buffer
	if code := run(context.Background(), []string{"gateway", "--key-file", loose}, strings.NewReader(""), io.Discard, &errOut); code != 1 || !strings.Contains(errOut.String(), "chmod 600") {
		t.Errorf("loose key: exit %d: %s", code, errOut.String())
	}
	errOut.Reset()
	if code := run(context.Background(), []string{"gateway", "--key-file", filepath.Join(dir, "gw.pem"), "--listen", "127.0.0.1:99999"}, strings.NewReader(""), io.Discard, &errOut); code != 1 {
		t.Errorf("bad address: exit %d: %s", code, errOut.String())
	}
}

// notifySink verifies notifications with v and hands them over.
func notifySink(t *testing.T, v gateway.Provider) (string, <-chan error) {
	t.Helper()
	got := make(chan error, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, err := v.Verify(r.Header, body)
		got <- err
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/notify", got
}

func nextErr(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(wait):
		t.Fatal("no notification")
	}
	return nil
}

// gatewayClient is onecard's client, configured from the simulator's
// files as onecard would be.
func gatewayClient(t *testing.T, url, dir string) *gateway.Client {
	t.Helper()
	mk, err := gateway.LoadPrivateKey(filepath.Join(dir, "merchant.pem"))
	if err != nil {
		t.Fatal(err)
	}
	gpub, err := gateway.LoadPublicKey(filepath.Join(dir, "gw.pem.pub"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := gateway.NewClient(gateway.Config{URL: url, Merchant: "estate-1", Key: mk, GatewayKeys: []ed25519.PublicKey{gpub}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestGatewayConsole drives the commands in process, with onecard's
// client against the simulator.
func TestGatewayConsole(t *testing.T) {
	dir := t.TempDir()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	defer inW.Close()
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"gateway", "--key-file", filepath.Join(dir, "gw.pem"), "--merchant", "estate-1", "--retry", "20ms", "--retry-max", "50ms"}, inR, outW, io.Discard)
		outW.Close()
	}()
	out := lines(outR)
	url := next(t, out)
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("first line %q, want the gateway's URL", url)
	}
	for _, f := range []string{"gw.pem", "merchant.pem"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v", f, err)
		}
	}
	c := gatewayClient(t, url, dir)
	notify, got := notifySink(t, c)
	ctx := context.Background()
	create := func(ref string) gateway.Created {
		t.Helper()
		cr, err := c.Create(ctx, gateway.Order{Ref: ref, AmountFen: 12345, Subject: "物业服务费", NotifyURL: notify})
		if err != nil {
			t.Fatal(err)
		}
		return cr
	}
	say := func(cmd string) string {
		t.Helper()
		if _, err := io.WriteString(inW, cmd+"\n"); err != nil {
			t.Fatal(err)
		}
		return next(t, out)
	}
	a := create("P-A")
	if got := say("list"); got != "orders: 1" {
		t.Fatalf("list: %q", got)
	}
	if got := next(t, out); got != "  "+a.ProviderTxn+" P-A estate-1 ¥123.45 pending "+a.QRContent {
		t.Errorf("list line %q", got)
	}
	if got := say("pay " + a.ProviderTxn); !strings.HasPrefix(got, "paid "+a.ProviderTxn+" P-A estate-1 ¥123.45 paid 20") {
		t.Errorf("pay: %q", got)
	}
	if err := nextErr(t, got); err != nil {
		t.Fatalf("notification: %v", err)
	}
	if st, err := c.Query(ctx, "P-A"); err != nil || st.State != "paid" {
		t.Errorf("Query = %+v, %v", st, err)
	}

	// Twice, by reference.
	if got := say("twice on"); got != "twice on" {
		t.Errorf("twice: %q", got)
	}
	create("P-B")
	say("pay P-B")
	for i := range 2 {
		if err := nextErr(t, got); err != nil {
			t.Fatalf("delivery %d: %v", i+1, err)
		}
	}
	say("twice off")

	// A bad signature, then good again.
	say("badsig on")
	create("P-C")
	say("pay P-C")
	if err := nextErr(t, got); !errors.Is(err, gateway.ErrBadSignature) {
		t.Fatalf("badsig: %v", err)
	}
	if got := say("badsig off"); got != "badsig off" {
		t.Errorf("badsig off: %q", got)
	}
	for {
		if err := nextErr(t, got); err == nil {
			break
		}
	}

	// Closed by the gateway: notified.
	d := create("P-D")
	if got := say("close P-D"); got != "closed "+d.ProviderTxn+" P-D estate-1 ¥123.45 closed by gateway" {
		t.Errorf("close: %q", got)
	}
	if err := nextErr(t, got); err != nil {
		t.Fatal(err)
	}
	checkSays(t, say, []consoleCase{
		{"status", "orders=4 pending=0 paid=3 closed=1 "},
		{"close P-D", "error: close: gatewaysim: the order is not pending: " + d.ProviderTxn + " is closed"},
		{"pay P-NONE", `error: pay: no order "P-NONE"`},
		{"pay", "error: pay: want a transaction id"},
		{"late 2s", "late 2s"},
		{"late 0", "late off"},
		{"late soon", "error: late"},
		{"late -1s", "error: late"},
		{"twice maybe", "error: twice: want on or off"},
		{"badsig", "error: badsig: want on or off"},
		{"status", "twice=off late=0s badsig=off url=" + url},
		{"fly", `error: unknown command "fly"`},
		{"help", "commands: list · pay TXN"},
	})
	// Five deliveries; the last may still be on its way back: ask again
	// (each answer lists them) until all five are in.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		got := say("deliveries")
		if !strings.HasPrefix(got, "deliveries: ") {
			t.Fatalf("deliveries: %q", got)
		}
		n, _ := strconv.Atoi(strings.TrimPrefix(got, "deliveries: "))
		for range n {
			if got := next(t, out); !strings.HasPrefix(got, "  ") || !strings.Contains(got, " → ") {
				t.Errorf("delivery line %q", got)
			}
		}
		if n >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries: %d, want 5", n)
		}
	}
	quitConsole(t, inW, done)
	if _, err := http.Get(url); err == nil {
		t.Error("still listening after quit")
	}
}

// The simulator as a process: it serves onecard's client, stops on
// SIGTERM, and keeps its key across a restart.
func TestGatewayProcess(t *testing.T) {
	dir := t.TempDir()
	start := func() (*exec.Cmd, string, <-chan error) {
		t.Helper()
		cmd := exec.Command(os.Args[0], "gateway", "--key-file", filepath.Join(dir, "gw.pem"), "--merchant", "estate-1")
		cmd.Env = append(os.Environ(), asMain+"=1", "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		pipe, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		first := make(chan string, 1)
		exited := make(chan error, 1)
		go func() {
			sc := bufio.NewScanner(pipe)
			if sc.Scan() {
				first <- sc.Text()
			}
			io.Copy(io.Discard, pipe)
			exited <- cmd.Wait()
		}()
		t.Cleanup(func() {
			cmd.Process.Kill()
			if t.Failed() {
				t.Logf("onecard-sim stderr:\n%s", stderr.String())
			}
		})
		select {
		case url := <-first:
			return cmd, url, exited
		case <-time.After(wait):
			t.Fatal("onecard-sim printed nothing")
		}
		return nil, "", nil
	}
	ctx := context.Background()
	cmd, url, exited := start()
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("first line %q", url)
	}
	c := gatewayClient(t, url, dir)
	if st, err := c.Query(ctx, "P-X"); err != nil || st.State != "not_found" {
		t.Fatalf("Query = %+v, %v", st, err)
	}
	terminate(t, cmd, exited)

	// The same keys after a restart: the same client still works.
	cmd, url, exited = start()
	c = gatewayClient(t, url, dir)
	if _, err := c.Create(ctx, gateway.Order{Ref: "P-Y", AmountFen: 1, Subject: "工本费", NotifyURL: "http://127.0.0.1:1/"}); err != nil {
		t.Fatalf("Create after a restart: %v", err)
	}
	terminate(t, cmd, exited)
}
