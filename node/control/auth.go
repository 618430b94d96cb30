package control

import (
	"encoding/hex"
	"strconv"

	"github.com/picosim/picosim/node/mac"
)

// Keyed control (Config.Key). A controller asks for a nonce once per
// connection, then signs each command with the shared key:
//
//	-> {"action": "get_nonce"}
//	<- {"action": "get_nonce", "nonce": "pico1-7-1", ...}
//	-> {"seq": 1, "command": "{\"action\": \"reset\"}", "mac": "<32 hex digits>"}
//	<- {"action": "reset", "seq": 1, "time_received": ...}
//
// mac is BLAKE2s-128 under the key (Python: hashlib.blake2s(msg, key=key,
// digest_size=16).hexdigest()) of the text
//
//	"C\n" + nonce + "\n" + str(seq) + "\n" + command
//
// seq must grow on the connection (pipelining is fine). A nonce names the
// board, its boot (an incarnation that grows at every boot, and 64 bits of
// the boot's entropy, for boards whose counter starts again: a re-flashed
// one, a simulator run again) and the connection, so it is never issued
// twice and a signed command works only on the connection it was signed
// for: a recorded command cannot be replayed, not even after a reboot. Anything else gets an error reply with
// "exception": "AuthError" and is not carried out. Replies are not signed:
// a host that can rewrite TCP segments in flight can change what a
// controller reads, not what the board does.
//
// Without a key the protocol is piconetcontrol's, unchanged, and a signed
// command is refused (AuthError) rather than run as if it were checked.

// signed takes a keyed connection's request apart: get_nonce is answered
// here (done), a valid signed command comes back unwrapped, anything else
// is an AuthError.
func (s *Server) signed(cn *conn, req Value) (cmd Value, seq int64, done *Value, e *cmdError) {
	if _, ok := req.Get("command"); !ok {
		if a, _ := req.Get("action"); a.Kind == String && a.Str == "get_nonce" {
			s.nonces++
			cn.nonce = s.cfg.NonceBase + "-" + strconv.FormatUint(s.nonces, 10)
			cn.seq = 0
			resp := req.Clone()
			resp.Set("nonce", Str(cn.nonce))
			return Value{}, 0, &resp, nil
		}
		return Value{}, 0, nil, authError(`this board takes signed commands only: send {"action": "get_nonce"}, then {"seq": N, "command": "<the command as JSON text>", "mac": "<hex>"}`)
	}
	if cn.nonce == "" {
		return Value{}, 0, nil, authError(`no nonce on this connection yet: send {"action": "get_nonce"} first`)
	}
	seq, e = intField(req, "seq")
	if e != nil {
		return Value{}, 0, nil, authError(`field "seq" must be an integer`)
	}
	if seq <= cn.seq {
		return Value{}, 0, nil, authError("seq " + strconv.FormatInt(seq, 10) + " is not above the last one on this connection (" + strconv.FormatInt(cn.seq, 10) + "): a replay?")
	}
	text, _ := req.Get("command")
	tag, _ := req.Get("mac")
	got, err := hex.DecodeString(tag.Str)
	if text.Kind != String || tag.Kind != String || err != nil || len(got) != mac.Size {
		return Value{}, 0, nil, authError(`fields "command" (a string) and "mac" (32 hex digits) are needed`)
	}
	s.mac.Reset()
	s.mac.WriteString("C\n")
	s.mac.WriteString(cn.nonce)
	s.mac.WriteString("\n")
	s.mac.WriteString(strconv.FormatInt(seq, 10))
	s.mac.WriteString("\n")
	s.mac.WriteString(text.Str)
	var want [mac.Size]byte
	if !mac.Equal(s.mac.Sum(want[:0]), got) {
		return Value{}, 0, nil, authError("wrong mac: signed with another key, or for another nonce, seq or command")
	}
	cn.seq = seq
	cmd, err = Parse([]byte(text.Str))
	if err != nil || cmd.Kind != Object {
		return Value{}, 0, nil, valueError(`field "command" must hold a JSON object`)
	}
	return cmd, seq, nil, nil
}

func authError(msg string) *cmdError {
	return &cmdError{"AuthError", msg}
}

// AuthFailures counts commands refused with AuthError since boot.
func (s *Server) AuthFailures() uint64 { return s.authFailures }

// Signer signs the commands of one connection, in order: a controller
// makes one with the nonce get_nonce gave the connection. Without a nonce
// (a board without a key) it passes commands through unsigned.
type Signer struct {
	Key   []byte
	Nonce string
	seq   int64 // the last seq signed
}

// Sign returns command (a JSON object, as text) as the connection's next
// line, without its "\n".
func (s *Signer) Sign(command string) (string, error) {
	if s.Nonce == "" {
		return command, nil
	}
	s.seq++
	return Sign(s.Key, s.Nonce, s.seq, command)
}

// Sign wraps command (a JSON object, as text) for a keyed board: it returns
// the line a controller sends (without its "\n") as the seq-th command on
// the connection that was given nonce.
func Sign(key []byte, nonce string, seq int64, command string) (string, error) {
	m, err := mac.New(key)
	if err != nil {
		return "", err
	}
	m.WriteString("C\n" + nonce + "\n" + strconv.FormatInt(seq, 10) + "\n" + command)
	line := Obj(
		Field{Key: "seq", Val: Int(seq)},
		Field{Key: "command", Val: Str(command)},
		Field{Key: "mac", Val: Str(hex.EncodeToString(m.Sum(nil)))})
	return line.String(), nil
}
