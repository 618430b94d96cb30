// Package ctl provides a client of the piconetcontrol protocol: dial a board
// (real, emulated, or simulated behind `picosim up --forward`), send
// commands, read replies. Plain TCP, newline-ended JSON, no TLS: Pico W
// boards built with TinyGo cannot serve TLS.
//
//	c, err := ctl.Dial(ctx, "127.0.0.1:12345", ctl.Options{})
//	r, err := c.Do(ctx, ctl.Command{{"action", "read_pin"}, {"pin", 2}})
//	fmt.Println(r["value"])
package ctl

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/picosim/picosim/node/control"
)

// Field is one key and value of a command; a Command keeps its fields in
// order, as the board echoes them.
type Field struct {
	Key   string
	Value any
}

// Command is one control command.
type Command []Field

// MarshalJSON writes the fields in order.
func (c Command) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, f := range c {
		if i > 0 {
			b.WriteString(", ")
		}
		k, _ := json.Marshal(f.Key)
		v, err := json.Marshal(f.Value)
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", f.Key, err)
		}
		b.Write(k)
		b.WriteString(": ")
		b.Write(v)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

// ParseCommand builds a command from key=value words, as the protocol's
// command-line client takes them: values that read as numbers are numbers,
// true and false are booleans, anything else is a string.
func ParseCommand(words []string) (Command, error) {
	var c Command
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value", w)
		}
		c = append(c, Field{k, parseValue(v)})
	}
	if len(c) == 0 {
		return nil, errors.New("empty command")
	}
	return c, nil
}

func parseValue(v string) any {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return n
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		return f
	}
	switch v {
	case "true":
		return true
	case "false":
		return false
	}
	return v
}

// Reply is a decoded reply; Raw is the line as it came.
type Reply struct {
	Fields map[string]any
	Raw    string
}

// Err returns the board's error, or nil for a reply without one.
func (r Reply) Err() error {
	msg, ok := r.Fields["error"].(string)
	if !ok {
		return nil
	}
	if exc, _ := r.Fields["exception"].(string); exc != "" {
		return fmt.Errorf("%s: %s", exc, msg)
	}
	return errors.New(msg)
}

// Options tune a client. The zero value is usable.
type Options struct {
	// Retries is how many times Dial tries again after a failed connect,
	// doubling Backoff each time: connects to Pico W boards fail now and
	// then. Default 3.
	Retries int
	// Backoff is the wait before the first retry. Default 200ms.
	Backoff time.Duration
	// Timeout bounds each connect and each reply. Default 3s, as the
	// protocol's own client.
	Timeout time.Duration
	// Key, if set, signs every command sent with Do for a keyed board
	// (node/control/auth.go): Dial asks for the connection's nonce.
	Key []byte
	// Dial, if set, opens the connection instead of net.Dialer (picosim
	// dials from inside a network namespace with it).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLS speaks TLS over the connection, as piconetcontrol's client does
	// by default against a server with a certificate (it verifies none:
	// the boards' certificates are self-signed).
	TLS bool
}

// Defaults fills in the defaults of the fields left zero.
func (o *Options) Defaults() {
	if o.Retries == 0 {
		o.Retries = 3
	}
	if o.Retries < 0 {
		o.Retries = 0
	}
	if o.Backoff <= 0 {
		o.Backoff = 200 * time.Millisecond
	}
	if o.Timeout <= 0 {
		o.Timeout = 3 * time.Second
	}
}

// Client is one connection to a board. It is not safe for concurrent use.
type Client struct {
	conn    net.Conn
	r       *bufio.Reader
	opt     Options
	timeout time.Duration  // the Options' Timeout, which SetTimeout overrides
	signer  control.Signer // keyed: this connection's, after handshake
}

// Dial connects to addr (host:port), retrying with backoff.
func Dial(ctx context.Context, addr string, opt Options) (*Client, error) {
	opt.Defaults()
	backoff := opt.Backoff
	var err error
	for attempt := 0; attempt <= opt.Retries; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			backoff *= 2
		}
		dial := opt.Dial
		if dial == nil {
			dial = (&net.Dialer{}).DialContext
		}
		var conn net.Conn
		dctx, cancel := context.WithTimeout(ctx, opt.Timeout)
		conn, err = dial(dctx, "tcp", addr)
		if err == nil && opt.TLS {
			tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true}) // as the real client: no verification
			if err = tc.HandshakeContext(dctx); err != nil {
				conn.Close()
				err = fmt.Errorf("TLS: %w", err)
			}
			conn = tc
		}
		cancel()
		if err == nil {
			c := &Client{conn: conn, r: bufio.NewReaderSize(conn, 16<<10), opt: opt, timeout: opt.Timeout}
			if len(opt.Key) > 0 {
				if err := c.handshake(ctx); err != nil {
					conn.Close()
					return nil, fmt.Errorf("connect to %s: %w", addr, err)
				}
			}
			return c, nil
		}
	}
	return nil, fmt.Errorf("connect to %s: %w (after %d tries)", addr, err, opt.Retries+1)
}

// handshake asks a keyed board for this connection's nonce.
func (c *Client) handshake(ctx context.Context) error {
	r, err := c.DoRaw(ctx, `{"action": "get_nonce"}`)
	if err != nil {
		return err
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("get_nonce: %w", err)
	}
	nonce, _ := r.Fields["nonce"].(string)
	if nonce == "" {
		return fmt.Errorf("get_nonce: no nonce in %s", r.Raw)
	}
	c.signer = control.Signer{Key: c.opt.Key, Nonce: nonce}
	return nil
}

// Do sends one command and waits for its reply. A reply with an error is
// returned as a Reply, not as an error: Err tells. With Options.Key the
// command goes signed.
func (c *Client) Do(ctx context.Context, cmd Command) (Reply, error) {
	line, err := cmd.MarshalJSON()
	if err != nil {
		return Reply{}, err
	}
	return c.DoLine(ctx, string(line))
}

// DoLine sends one command given as JSON text, signed with Options.Key if
// there is one, and waits for its reply.
func (c *Client) DoLine(ctx context.Context, line string) (Reply, error) {
	line, err := c.signer.Sign(line)
	if err != nil {
		return Reply{}, err
	}
	return c.DoRaw(ctx, line)
}

// DoRaw sends one line as it is (a "\n" is added) and waits for the reply.
func (c *Client) DoRaw(ctx context.Context, line string) (Reply, error) {
	deadline := time.Now().Add(c.opt.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.conn.SetDeadline(deadline)
	if _, err := c.conn.Write([]byte(line + "\n")); err != nil {
		return Reply{}, fmt.Errorf("send: %w", err)
	}
	got, err := c.r.ReadString('\n')
	if err != nil {
		return Reply{}, fmt.Errorf("reply: %w", err)
	}
	r := Reply{Raw: strings.TrimSuffix(got, "\n")}
	if err := json.Unmarshal([]byte(r.Raw), &r.Fields); err != nil {
		return r, fmt.Errorf("reply is not JSON: %q", r.Raw)
	}
	return r, nil
}

// SetTimeout bounds the wait for each reply from now on (0: the Options'
// Timeout).
func (c *Client) SetTimeout(d time.Duration) {
	if d <= 0 {
		d = c.timeout
	}
	c.opt.Timeout = d
}

// Closed reports whether the board has closed the connection (after a
// reset, say), without waiting: a reply still unread does not count.
func (c *Client) Closed() bool {
	if c.r.Buffered() > 0 {
		return false
	}
	c.conn.SetReadDeadline(time.Now().Add(time.Millisecond))
	_, err := c.r.Peek(1)
	c.conn.SetReadDeadline(time.Time{})
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// Close ends the connection, sending the protocol's end-of-commands blank
// line first.
func (c *Client) Close() error {
	c.conn.Write([]byte("\n"))
	return c.conn.Close()
}
