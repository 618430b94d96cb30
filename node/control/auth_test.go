package control

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/picosim/picosim/node/mac"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// sign wraps a command as a keyed controller does.
func sign(t *testing.T, key []byte, nonce string, seq int64, command string) string {
	m, err := mac.New(key)
	if err != nil {
		t.Fatal(err)
	}
	m.WriteString("C\n" + nonce + "\n" + strconv.FormatInt(seq, 10) + "\n" + command)
	line, _ := json.Marshal(map[string]any{"seq": seq, "command": command, "mac": hex.EncodeToString(m.Sum(nil))})
	return string(line)
}

func TestKeyedControlRunsSignedCommandsOnly(t *testing.T) {
	b := newBoard(t, Config{Key: testKey, NonceBase: "pico1-7"})
	b.open(1)
	setup := `{"action": "setup_pin", "pin": 4, "mode": "output", "value": 0}`
	write := `{"action": "write_pin", "pin": 4, "value": 1, "timeout": 5}`

	// Unsigned: refused, with the way to do it.
	if r := b.send(1, write); r["exception"] != "AuthError" {
		t.Fatalf("unsigned command: %v", r)
	}
	// Signed before any nonce: refused.
	if r := b.send(1, sign(t, testKey, "pico1-7-1", 1, setup)); r["exception"] != "AuthError" {
		t.Fatalf("signed without a nonce: %v", r)
	}
	r := b.send(1, `{"action": "get_nonce"}`)
	nonce, _ := r["nonce"].(string)
	if nonce != "pico1-7-1" {
		t.Fatalf("get_nonce: %v", r)
	}
	if r := b.send(1, sign(t, testKey, nonce, 1, setup)); r["error"] != nil || r["action"] != "setup_pin" || r["seq"] != 1.0 {
		t.Fatalf("signed setup: %v", r)
	}
	// Pipelined, growing seq: both run.
	b.s.Receive(b.now, 1, []byte(sign(t, testKey, nonce, 2, write)+"\n"+sign(t, testKey, nonce, 5, `{"action": "ping"}`)+"\n"))
	b.apply()
	if last := b.replies[1][len(b.replies[1])-1]; last["action"] != "ping" || last["seq"] != 5.0 {
		t.Fatalf("pipelined: %v", b.replies[1][len(b.replies[1])-2:])
	}
	if _, v := b.s.Pin(4); v != 1 {
		t.Fatal("the signed write did not happen")
	}
	failures := b.s.AuthFailures()
	for _, tc := range []struct{ name, line string }{
		{"replayed", sign(t, testKey, nonce, 2, write)},
		{"another key", sign(t, []byte("another key, 16+"), nonce, 6, write)},
		{"another nonce", sign(t, testKey, "pico1-7-2", 6, write)},
		{"another command", func() string {
			var m map[string]any
			json.Unmarshal([]byte(sign(t, testKey, nonce, 6, write)), &m)
			m["command"] = `{"action": "reset"}`
			out, _ := json.Marshal(m)
			return string(out)
		}()},
		{"bad mac", `{"seq": 7, "command": "{}", "mac": "zz"}`},
		{"no seq", `{"command": "{}", "mac": "00"}`},
	} {
		if r := b.send(1, tc.line); r["exception"] != "AuthError" {
			t.Errorf("%s: %v", tc.name, r)
		}
	}
	if got := b.s.AuthFailures() - failures; got != 6 {
		t.Errorf("AuthFailures grew by %d, want 6", got)
	}
	if len(b.actions) != 0 {
		t.Errorf("a refused command acted: %v", b.actions)
	}
	// A nonce belongs to its connection: a command signed for connection 1
	// fails on connection 2, even with connection 2's own nonce asked.
	b.open(2)
	b.send(2, `{"action": "get_nonce"}`)
	if r := b.send(2, sign(t, testKey, nonce, 9, `{"action": "reset"}`)); r["exception"] != "AuthError" {
		t.Fatalf("a command signed for another connection ran: %v", r)
	}
	b.run(2 * time.Second)
	if len(b.actions) != 0 {
		t.Errorf("reset happened: %v", b.actions)
	}
}

func TestSignMatchesTheDocumentedRecipe(t *testing.T) {
	// The recipe of auth.go, as a Python controller follows it, gives what
	// Sign gives.
	got, err := Sign(testKey, "pico1-7-1", 3, `{"action": "ping"}`)
	if err != nil {
		t.Fatal(err)
	}
	if want := sign(t, testKey, "pico1-7-1", 3, `{"action": "ping"}`); !sameJSON(got, want) {
		t.Fatalf("Sign: %s\nrecipe: %s", got, want)
	}
}

func sameJSON(a, b string) bool {
	var x, y map[string]any
	json.Unmarshal([]byte(a), &x)
	json.Unmarshal([]byte(b), &y)
	return x != nil && fmt.Sprint(x) == fmt.Sprint(y)
}

func TestWithoutAKeyASignedCommandIsRefusedNotRunUnchecked(t *testing.T) {
	b := newBoard(t, Config{})
	b.open(1)
	if r := b.send(1, sign(t, testKey, "x", 1, `{"action": "reset"}`)); r["exception"] != "AuthError" {
		t.Fatalf("signed command on a keyless board: %v", r)
	}
	if r := b.send(1, `{"action": "get_nonce"}`); r["exception"] != "ValueError" {
		t.Fatalf("get_nonce without a key should be an unknown action, as on piconetcontrol: %v", r)
	}
	if r := b.send(1, `{"action": "ping"}`); r["error"] != nil {
		t.Fatalf("ping: %v", r)
	}
}

func TestSilentAndSlowConnectionsCannotKeepAControllerOut(t *testing.T) {
	b := newBoard(t, Config{})
	// Four connections hold every slot: two silent, two sending a command a
	// byte at a time without ever finishing it.
	for c := ConnID(1); c <= 4; c++ {
		b.open(c)
	}
	for i := 0; i < 30; i++ {
		b.run(b.now + 100*time.Millisecond)
		b.s.Receive(b.now, 3, []byte("{"))
		b.s.Receive(b.now, 4, []byte(" "))
		b.apply()
	}
	// A controller connects: it takes the place of the connection idle
	// longest, which is told why.
	b.open(5)
	if r := b.send(5, `{"action": "ping"}`); r == nil || r["error"] != nil {
		t.Fatalf("the controller was not served: %v", r)
	}
	if len(b.closed) != 1 || b.closed[0] != 1 {
		t.Fatalf("closed %v, want [1] (idle longest)", b.closed)
	}
	if r := b.replies[1]; len(r) != 1 || r[0]["exception"] != "OSError" {
		t.Fatalf("the evicted connection was not told: %v", r)
	}
	// Four busy controllers are not evicted for a fifth.
	b2 := newBoard(t, Config{})
	for c := ConnID(1); c <= 4; c++ {
		b2.open(c)
	}
	b2.run(10 * time.Second)
	for c := ConnID(1); c <= 4; c++ {
		b2.send(c, `{"action": "ping"}`)
	}
	b2.open(5)
	if len(b2.closed) != 1 || b2.closed[0] != 5 {
		t.Fatalf("closed %v, want the newcomer [5]", b2.closed)
	}
	// Bytes without a newline do not keep a connection alive.
	b3 := newBoard(t, Config{IdleTimeout: 5 * time.Second})
	b3.open(1)
	for i := 0; i < 100; i++ {
		b3.run(b3.now + 100*time.Millisecond)
		b3.s.Receive(b3.now, 1, []byte("x"))
		b3.apply()
	}
	if len(b3.closed) != 1 {
		t.Fatalf("a connection trickling bytes for 10s outlived a 5s idle timeout: closed %v", b3.closed)
	}
}

func TestOneHostCannotTakeEverySlot(t *testing.T) {
	b := newBoard(t, Config{})
	attacker, other := [4]byte{192, 168, 1, 66}, [4]byte{192, 168, 1, 10}
	for c := ConnID(1); c <= 3; c++ {
		b.s.OpenFrom(b.now, c, attacker)
		b.apply()
	}
	b.s.OpenFrom(b.now, 4, attacker)
	b.apply()
	if len(b.closed) != 1 || b.closed[0] != 4 || b.replies[4][0]["exception"] != "OSError" {
		t.Fatalf("a 4th connection from one host: closed %v, replies %v", b.closed, b.replies[4])
	}
	b.s.OpenFrom(b.now, 5, other)
	b.apply()
	if r := b.send(5, `{"action": "ping"}`); r == nil || r["error"] != nil {
		t.Fatalf("another host was not served: %v", r)
	}
}

func TestAHostsIdleConnectionGivesWayToItsNewOne(t *testing.T) {
	// Everything through picosim up's forwarder comes from one address:
	// three idle connections there must not keep a fourth client out.
	b := newBoard(t, Config{})
	host := [4]byte{192, 168, 1, 66}
	for c := ConnID(1); c <= 3; c++ {
		b.s.OpenFrom(b.now, c, host)
		b.apply()
	}
	b.send(2, `{"action": "ping"}`)
	b.run(3 * time.Second)
	b.send(3, "", "") // blank lines are no activity
	b.s.OpenFrom(b.now, 4, host)
	b.apply()
	if r := b.send(4, `{"action": "ping"}`); r == nil || r["error"] != nil {
		t.Fatalf("the new connection was not served: %v", r)
	}
	if len(b.closed) != 1 || b.closed[0] != 1 {
		t.Fatalf("closed %v, want [1]: the idlest of the host's", b.closed)
	}
}
