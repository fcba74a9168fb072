package broker_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"onecard/devices/broker"
	"onecard/fleet/proto"
)

const mosquittoBin = "/usr/sbin/mosquitto"

// The files of MosquittoFiles and MosquittoConf make a real Mosquitto
// enforce the same rules as the embedded broker.
func TestMosquitto(t *testing.T) {
	if _, err := os.Stat(mosquittoBin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s missing: CI installs it", mosquittoBin)
		}
		t.Skipf("%s missing", mosquittoBin)
	}
	dir := t.TempDir()
	passwd, acl := broker.MosquittoFiles(site, users(t))
	pwPath, aclPath := filepath.Join(dir, "passwd"), filepath.Join(dir, "acl")
	logPath, confPath := filepath.Join(dir, "mosquitto.log"), filepath.Join(dir, "mosquitto.conf")
	port := freePort(t)
	conf := string(broker.MosquittoConf("127.0.0.1:"+port, pwPath, aclPath))
	// For the test: nothing saved, a log to show on failure, and no
	// dropping of privileges to a user who could not read t.TempDir().
	conf += "persistence false\nlog_dest file " + logPath + "\nlog_type all\n"
	if u, err := user.Current(); err == nil {
		conf += "user " + u.Username + "\n"
	}
	for path, b := range map[string][]byte{pwPath: passwd, aclPath: acl, confPath: []byte(conf)} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	cmd := exec.Command(mosquittoBin, "-c", confPath)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("mosquitto.conf:\n%s\nacl:\n%s\nmosquitto log:\n%s", conf, acl, b)
		}
	})
	addr := "127.0.0.1:" + port
	for deadline := time.Now().Add(wait); ; time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("mosquitto exited: %v\n%s", err, b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("mosquitto does not listen")
		}
	}

	checkRules(t, "tcp://"+addr)
	t.Run("queued while offline", func(t *testing.T) { checkQueued(t, addr, nil) })
	t.Run("will", func(t *testing.T) { checkWill(t, addr) })
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func TestMosquittoFilesLeavesOutBadEntries(t *testing.T) {
	h, _ := broker.HashSecret("pw")
	dev := func(id string, zones ...string) proto.Principal {
		return proto.Principal{Role: proto.RoleDevice, ID: id, Zones: zones}
	}
	bad := []broker.MosquittoUser{
		{Username: "gate-9\nuser evil", Hash: h, Principal: dev("gate-9")},
		{Username: "ev:il", Hash: h, Principal: proto.Principal{Role: proto.RoleServer}},
		{Username: "gate-8", Hash: "plain", Principal: dev("gate-8")},
		{Username: "gate-7", Hash: h, Principal: dev("gate-6")},
		{Username: "gate-5", Hash: h, Principal: dev("gate-5", "zone/#")},
		{Username: "root", Hash: h, Principal: proto.Principal{Role: "admin"}},
		{Username: "", Hash: h, Principal: proto.Principal{Role: proto.RoleMonitor}},
	}
	good := broker.MosquittoUser{Username: "gate-1", Hash: h, Principal: dev("gate-1", "gate")}
	passwd, acl := broker.MosquittoFiles(site, append(bad, good))
	if want := "gate-1:" + h + "\n"; string(passwd) != want {
		t.Errorf("passwd = %q, want %q", passwd, want)
	}
	if n := strings.Count(string(acl), "left out"); n != len(bad) {
		t.Errorf("%d entries left out, want %d:\n%s", n, len(bad), acl)
	}
	for _, line := range strings.Split(string(acl), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "user gate-1") &&
			!strings.HasPrefix(line, "topic read onecard/v1/cuihu/") && !strings.HasPrefix(line, "topic write onecard/v1/cuihu/dev/gate-1/") {
			t.Errorf("unexpected ACL line %q", line)
		}
	}
	if _, acl := broker.MosquittoFiles("Bad Site", []broker.MosquittoUser{good}); strings.Contains(string(acl), "topic") {
		t.Errorf("invalid site granted something:\n%s", acl)
	}
}

func TestMosquittoConfListener(t *testing.T) {
	for in, want := range map[string]string{
		"1883":           "listener 1883\n",
		"127.0.0.1:1883": "listener 1883 127.0.0.1\n",
		"[::1]:8883":     "listener 8883 ::1\n",
	} {
		if c := string(broker.MosquittoConf(in, "/p", "/a")); !strings.Contains(c, want) {
			t.Errorf("%s: no %q in\n%s", in, want, c)
		}
	}
}

func ExampleMosquittoFiles() {
	// In onecard the hashes come from the database (HashSecret); this one
	// was written by mosquitto_passwd.
	const hash = "$7$101$ImccenCKbXA8EgDF$T5bA8k9L+uezmqyM2dhegaAwTvJSAP/zz4qb3x9IfUeb5E0cmGiRYQ43jUsTcW2WEgm8kgLuAVG9uqY2XnJHlQ=="
	passwd, acl := broker.MosquittoFiles("cuihu", []broker.MosquittoUser{
		{Username: "gate-1", Hash: hash, Principal: proto.Principal{Role: proto.RoleDevice, ID: "gate-1", Zones: []string{"gate", "carpark"}}},
		{Username: "onecard-server", Hash: hash, Principal: proto.Principal{Role: proto.RoleServer, ID: "onecard-server"}},
		{Username: "monitor", Hash: hash, Principal: proto.Principal{Role: proto.RoleMonitor, ID: "monitor"}},
	})
	fmt.Printf("%d lines of passwd\n%s", strings.Count(string(passwd), "\n"), acl)
	// Output:
	// 3 lines of passwd
	// # onecard reader fleet, site cuihu: generated by onecard, do not edit.
	// # Anything not granted here is denied.
	//
	// user gate-1
	// topic write onecard/v1/cuihu/dev/gate-1/state
	// topic write onecard/v1/cuihu/dev/gate-1/ack
	// topic write onecard/v1/cuihu/dev/gate-1/sync
	// topic write onecard/v1/cuihu/dev/gate-1/evt
	// topic read onecard/v1/cuihu/dev/gate-1/wl
	// topic read onecard/v1/cuihu/dev/gate-1/snap
	// topic read onecard/v1/cuihu/dev/gate-1/evtack
	// topic read onecard/v1/cuihu/dev/gate-1/cmd
	// topic read onecard/v1/cuihu/config
	// topic read onecard/v1/cuihu/zone/gate/wl
	// topic read onecard/v1/cuihu/zone/carpark/wl
	//
	// user onecard-server
	// topic readwrite onecard/v1/cuihu/#
	//
	// user monitor
	// topic read onecard/v1/#
}

// The ACL file grants exactly what proto.Topics.Allowed grants, topic by
// topic, read and write, for every role: checked with Mosquitto's topic
// matching over topics of this site, another site and malformed ones.
func TestMosquittoACLMatchesAllowed(t *testing.T) {
	us := users(t)
	us = append(us, broker.MosquittoUser{Username: "lobby-3", Hash: us[0].Hash,
		Principal: proto.Principal{Role: proto.RoleDevice, ID: "lobby-3", Zones: []string{"gate", "lobby", "carpark"}}})
	_, acl := broker.MosquittoFiles(site, us)
	rules := map[string][][2]string{} // user → (access, pattern)
	var cur string
	for _, line := range strings.Split(string(acl), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "user":
			cur = f[1]
		case len(f) == 3 && f[0] == "topic":
			rules[cur] = append(rules[cur], [2]string{f[1], f[2]})
		case len(f) > 0 && f[0] != "#":
			t.Fatalf("unexpected ACL line %q", line)
		}
	}
	aclAllows := func(user, topic string, write bool) bool {
		for _, r := range rules[user] {
			if (r[0] == "readwrite" || (r[0] == "write") == write) && mqttMatch(r[1], topic) {
				return true
			}
		}
		return false
	}

	var corpus []string
	for _, s := range []string{site, "other"} {
		ts := proto.Topics{Site: s}
		corpus = append(corpus, ts.Config(), ts.Prefix()+"config/x", ts.Prefix()+"dev/gate-1")
		for _, id := range []string{"gate-1", "gate-2", "lobby-3", "monitor", "onecard-server"} {
			for _, k := range []string{proto.KindState, proto.KindWL, proto.KindSnap, proto.KindAck, proto.KindSync,
				proto.KindEvt, proto.KindEvtAck, proto.KindCmd, "other"} {
				corpus = append(corpus, ts.Device(id, k), ts.Device(id, k)+"/x")
			}
		}
		for _, z := range []string{"gate", "carpark", "lobby", "b3"} {
			corpus = append(corpus, ts.Zone(z), ts.Prefix()+"zone/"+z, ts.Prefix()+"zone/"+z+"/other")
		}
	}
	// Left out: "onecard/v1" and "onecard/v1/<site>" themselves, which
	// Mosquitto's "…/#" matches (MQTT: # includes the parent level) and
	// Allowed does not; no one uses them.
	corpus = append(corpus, "onecard/v2/cuihu/config", "$SYS/broker/uptime", "elsewhere", "onecard/v1/", "onecard/v1/cuihu/")
	for _, u := range us {
		for _, topic := range corpus {
			for _, write := range []bool{false, true} {
				want := topics.Allowed(u.Principal, topic, write)
				if got := aclAllows(u.Username, topic, write); got != want {
					t.Errorf("%s %s write=%v: ACL file %v, proto.Allowed %v", u.Username, topic, write, got, want)
				}
			}
		}
	}
}

// mqttMatch is MQTT's topic filter matching (a topic name has no
// wildcards; "a/#" also matches "a").
func mqttMatch(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "#") || strings.HasPrefix(filter, "+")) {
		return false
	}
	fs, ts := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, f := range fs {
		if f == "#" {
			return true
		}
		if i >= len(ts) || (f != "+" && f != ts[i]) {
			return false
		}
	}
	return len(fs) == len(ts)
}
