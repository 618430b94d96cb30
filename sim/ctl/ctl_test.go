package ctl

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

func TestParseCommandTypesValuesLikeTheProtocolsClient(t *testing.T) {
	c, err := ParseCommand(strings.Fields("action=write_pin pin=2 value=1 timeout=0.5 deep=true mode=output"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.MarshalJSON()
	want := `{"action": "write_pin", "pin": 2, "value": 1, "timeout": 0.5, "deep": true, "mode": "output"}`
	if string(b) != want {
		t.Fatalf("\n got %s\nwant %s", b, want)
	}
	for _, bad := range [][]string{nil, {"novalue"}, {"=3"}} {
		if _, err := ParseCommand(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDialRetriesUntilTheBoardListens(t *testing.T) {
	// Find a free port, then listen on it only after the first attempt failed.
	probe, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := probe.Addr().String()
	probe.Close()
	ready := make(chan net.Listener, 1)
	go func() {
		time.Sleep(150 * time.Millisecond) // the board boots late: that is the scenario
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			ready <- nil
			return
		}
		ready <- ln
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte(`{"action": "ping", "time_received": 1}` + "\n"))
			c.Close()
		}
	}()
	c, err := Dial(context.Background(), addr, Options{Retries: 5, Backoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ln := <-ready; ln != nil {
		defer ln.Close()
	}
	r, err := c.Do(context.Background(), Command{{"action", "ping"}})
	if err != nil || r.Err() != nil || r.Fields["time_received"] != 1.0 {
		t.Fatalf("%v %v %v", r, err, r.Err())
	}
}

func TestClosedTellsABoardThatHungUpFromOneThatIsQuiet(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	hangUp := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		<-hangUp
		c.Close() // a board resetting drops its connections
	}()
	dialed := 0
	c, err := Dial(context.Background(), ln.Addr().String(), Options{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialed++
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}})
	if err != nil || dialed != 1 {
		t.Fatalf("dial: %v, the Dial option was used %d times", err, dialed)
	}
	defer c.Close()
	if c.Closed() {
		t.Fatal("a quiet connection counts as closed")
	}
	close(hangUp)
	deadline := time.Now().Add(2 * time.Second)
	for !c.Closed() {
		if time.Now().After(deadline) {
			t.Fatal("the board hung up, but Closed does not say so")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
