package control

import (
	"encoding/base64"
	"math"
	"strconv"
	"strings"
	"time"
)

// Actions lists the actions in the order list_actions gives them.
// get_resource_info, the name the protocol's README uses, is an alias of
// get_info.
var Actions = []string{"setup_pin", "write_pin", "read_pin", "ping", "reset", "get_version", "get_info", "sleep", "list_actions", "update"}

// cmdError is an error reply: a Python exception class and its message.
type cmdError struct{ exception, msg string }

func valueError(format string, args ...string) *cmdError {
	for _, a := range args {
		format = strings.Replace(format, "%s", a, 1)
	}
	return &cmdError{"ValueError", format}
}

func errorReply(req Value, exception, msg string) Value {
	v := req.Clone()
	if v.Kind != Object {
		v = Obj()
	}
	v.Set("error", Str(msg))
	v.Set("exception", Str(exception))
	return v
}

func (s *Server) command(now time.Duration, c ConnID, line []byte) {
	req, err := Parse(line)
	if err != nil {
		s.reply(c, errorReply(Value{}, "ValueError", err.Error()))
		return
	}
	if req.Kind != Object {
		s.reply(c, errorReply(Value{}, "ValueError", "a command is a JSON object, not "+req.Kind.String()))
		return
	}
	_, hasCmd := req.Get("command")
	_, hasMAC := req.Get("mac")
	switch {
	case s.cfg.Locked != "":
		s.authFailures++
		s.reply(c, errorReply(req, "AuthError", "this board refuses every command: "+s.cfg.Locked))
		return
	case s.mac != nil:
		cmd, seq, done, cerr := s.signed(s.conns[c], req)
		switch {
		case cerr != nil:
			if cerr.exception == "AuthError" {
				s.authFailures++
			}
			s.reply(c, errorReply(req, cerr.exception, cerr.msg))
			return
		case done != nil:
			s.reply(c, *done)
			return
		}
		resp, cerr := s.do(now, c, cmd)
		if cerr != nil {
			resp = errorReply(cmd, cerr.exception, cerr.msg)
		}
		resp.Set("seq", Int(seq))
		s.reply(c, resp)
		return
	case hasCmd && hasMAC:
		s.authFailures++
		s.reply(c, errorReply(req, "AuthError", "this board has no key: send commands unsigned"))
		return
	}
	resp, cerr := s.do(now, c, req)
	if cerr != nil {
		s.reply(c, errorReply(req, cerr.exception, cerr.msg))
		return
	}
	s.reply(c, resp)
}

func (s *Server) do(now time.Duration, c ConnID, req Value) (Value, *cmdError) {
	if e := need(req, "action"); e != nil {
		return Value{}, e
	}
	a, _ := req.Get("action")
	if a.Kind != String {
		return Value{}, valueError(`field "action" must be a string`)
	}
	resp := req.Clone()
	resp.Set("time_received", Int(s.cfg.EpochNS+int64(now)))
	var e *cmdError
	switch a.Str {
	case "setup_pin":
		e = s.setupPin(now, req)
	case "write_pin":
		e = s.writePin(now, c, req)
	case "read_pin":
		var n int
		if n, e = s.setUpPin(req); e == nil {
			resp.Set("value", Int(int64(s.pins[n].value)))
		}
	case "ping":
	case "reset":
		s.later(now, Action{Kind: ActReset})
	case "get_version":
		resp.Set("version", Str(s.cfg.Version))
	case "get_info", "get_resource_info":
		resp.Set("info", s.info(now))
	case "sleep":
		e = s.sleep(now, req)
	case "list_actions":
		var names []Value
		for _, n := range Actions {
			names = append(names, Str(n))
		}
		for _, x := range s.cfg.Extensions {
			names = append(names, Str(x.Name))
		}
		resp.Set("actions", List(names...))
	case "update":
		e = s.update(now, req)
	default:
		x := s.extension(a.Str)
		if x == nil {
			return Value{}, valueError(`unknown action "%s", use "list_actions" to list available actions`, a.Str)
		}
		fields, err := x.Do(now, req)
		if err != nil {
			return Value{}, &cmdError{"ValueError", err.Error()}
		}
		for _, f := range fields {
			resp.Set(f.Key, f.Val)
		}
	}
	if e != nil {
		return Value{}, e
	}
	return resp, nil
}

func (s *Server) extension(name string) *Extension {
	for i := range s.cfg.Extensions {
		if s.cfg.Extensions[i].Name == name {
			return &s.cfg.Extensions[i]
		}
	}
	return nil
}

func (s *Server) setupPin(now time.Duration, req Value) *cmdError {
	if e := need(req, "pin", "mode"); e != nil {
		return e
	}
	n, e := pinField(req)
	if e != nil {
		return e
	}
	modeStr, e := strField(req, "mode")
	if e != nil {
		return e
	}
	var mode Mode
	switch modeStr {
	case "input":
		mode = Input
	case "output":
		mode = Output
	default:
		return valueError(`mode "%s" is neither "input" nor "output"`, modeStr)
	}
	p := &s.pins[n]
	value := p.value
	if _, ok := req.Get("value"); ok {
		if mode == Input {
			return valueError("pin %s is set up as an input: it takes no value", strconv.Itoa(n))
		}
		if value, e = levelField(req, "value"); e != nil {
			return e
		}
	}
	s.setup(now, n, mode, value)
	return nil
}

func (s *Server) setup(now time.Duration, n int, mode Mode, value int) {
	s.pins[n] = pin{mode: mode, value: value, setupVal: value}
	s.rd.Pins = append(s.rd.Pins, PinChange{At: now, Pin: n, Value: value, Cause: BySetup})
}

// Setup sets a pin up as the firmware itself does at boot, before any
// controller: a pin of 0..28, Input or Output, and an output's level.
func (s *Server) Setup(now time.Duration, n int, mode Mode, value int) error {
	s.stale = true
	switch {
	case n < 0 || n > MaxPin:
		return errorString("pin " + strconv.Itoa(n) + " is out of range: GPIO pins are 0 to 28")
	case mode != Input && mode != Output:
		return errorString("mode must be input or output")
	case value != 0 && value != 1:
		return errorString("value must be 0 or 1")
	}
	s.setup(now, n, mode, value)
	return nil
}

// Drive sets an output pin for an app of the firmware (the LED mirror's
// target): a pin that is not an output yet becomes one, with 0 as its setup
// value. A revert pending on the pin stays pending.
func (s *Server) Drive(now time.Duration, n, value int) error {
	s.stale = true
	if n < 0 || n > MaxPin || (value != 0 && value != 1) {
		return errorString("an app drove GPIO" + strconv.Itoa(n) + " to " + strconv.Itoa(value))
	}
	p := &s.pins[n]
	if p.mode != Output {
		*p = pin{mode: Output}
	}
	if p.value != value {
		p.value = value
		s.rd.Pins = append(s.rd.Pins, PinChange{At: now, Pin: n, Value: value, Cause: ByApp})
	}
	return nil
}

func (s *Server) writePin(now time.Duration, c ConnID, req Value) *cmdError {
	if e := need(req, "pin", "value", "timeout"); e != nil {
		return e
	}
	n, e := s.setUpPin(req)
	if e != nil {
		return e
	}
	value, e := levelField(req, "value")
	if e != nil {
		return e
	}
	timeout, e := floatField(req, "timeout")
	if e != nil {
		return e
	}
	if !(timeout >= 0 && timeout <= MaxTimeout.Seconds()) { // NaN too
		return valueError("timeout must be 0 to %s seconds (about 6.2 days), got %s",
			strconv.FormatFloat(MaxTimeout.Seconds(), 'f', -1, 64), strconv.FormatFloat(timeout, 'g', -1, 64))
	}
	p := &s.pins[n]
	if p.mode != Output {
		return valueError("pin %s is set up as an input: it cannot be written", strconv.Itoa(n))
	}
	if p.value == value {
		// Already there: nothing to write and, as on the real server,
		// nothing to schedule; a hold keeps its end.
		return nil
	}
	if !p.held {
		p.revertTo = p.value // the hold begins: this is what it returns to
	}
	p.value = value
	p.held, p.revertAt, p.heldBy = true, now+time.Duration(math.Round(timeout*1e9)), c
	s.rd.Pins = append(s.rd.Pins, PinChange{At: now, Pin: n, Value: value, Cause: ByWrite})
	return nil
}

func (s *Server) sleep(now time.Duration, req Value) *cmdError {
	if e := need(req, "time_ms", "deep"); e != nil {
		return e
	}
	msec, e := intField(req, "time_ms")
	if e != nil {
		return e
	}
	if msec < 0 {
		return valueError("time_ms must not be negative")
	}
	if msec > MaxTimeout.Milliseconds() { // and a duration that overflows
		return valueError("time_ms must be at most %s (about 6.2 days), got %s",
			strconv.FormatInt(MaxTimeout.Milliseconds(), 10), strconv.FormatInt(msec, 10))
	}
	deep, e := intField(req, "deep")
	if e != nil {
		return e
	}
	kind := ActLightSleep
	if deep != 0 {
		kind = ActDeepSleep
	}
	s.later(now, Action{Kind: kind, For: time.Duration(msec) * time.Millisecond})
	return nil
}

func (s *Server) update(now time.Duration, req Value) *cmdError {
	if e := need(req, "files"); e != nil {
		return e
	}
	files, _ := req.Get("files")
	if files.Kind != Object || len(files.Fields) == 0 {
		return valueError(`field "files" must be an object of file names and contents`)
	}
	compress := false
	if v, ok := req.Get("compress"); ok {
		switch {
		case v.Kind == Bool:
			compress = v.Bool
		case v.Kind == Number:
			compress = v.Num != 0
		default:
			return valueError(`field "compress" must be true or false`)
		}
	}
	var out []File
	for _, f := range files.Fields {
		if f.Val.Kind != String {
			return valueError(`file "%s": content must be a string`, f.Key)
		}
		content := []byte(f.Val.Str)
		if compress {
			raw, err := base64.StdEncoding.DecodeString(f.Val.Str)
			if err != nil {
				return valueError(`file "%s": content is not valid base64`, f.Key)
			}
			if s.cfg.Inflate == nil {
				return valueError("this board cannot decompress updates: send them with compress false")
			}
			if content, err = s.cfg.Inflate(raw); err != nil {
				return valueError(`file "%s": content is not valid deflate data (%s)`, f.Key, err.Error())
			}
		}
		out = append(out, File{Name: f.Key, Content: content})
	}
	s.later(now, Action{Kind: ActUpdate, Files: out})
	return nil
}

func (s *Server) info(now time.Duration) Value {
	alloc := 40<<10 + len(s.conns)*(2<<10)
	for _, c := range s.conns {
		alloc += cap(c.buf)
	}
	return Obj(
		Field{"mem_free", Int(int64(s.cfg.HeapBytes - alloc))},
		Field{"mem_alloc", Int(int64(alloc))},
		Field{"uptime", Float(math.Round((now-s.booted).Seconds()*1000) / 1000)},
		Field{"version", Str(s.cfg.Version)},
		Field{"board", Str(s.cfg.Board)},
	)
}

func (s *Server) later(now time.Duration, a Action) {
	s.pending = append(s.pending, delayed{at: now + ActionDelay, action: a})
}

// setUpPin reads the pin field and checks that the pin was set up.
func (s *Server) setUpPin(req Value) (int, *cmdError) {
	n, e := pinField(req)
	if e != nil {
		return 0, e
	}
	if s.pins[n].mode == Unset {
		return 0, &cmdError{"GPIOPinNotSetupError", "pin " + strconv.Itoa(n) + " not setup"}
	}
	return n, nil
}

func need(req Value, names ...string) *cmdError {
	var missing []string
	for _, n := range names {
		if _, ok := req.Get(n); !ok {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return valueError("incomplete command, missing fields: " + strings.Join(missing, ", "))
	}
	return nil
}

func pinField(req Value) (int, *cmdError) {
	n, e := intField(req, "pin")
	if e != nil {
		return 0, e
	}
	if n < 0 || n > MaxPin {
		return 0, valueError("pin %s is out of range: GPIO pins are 0 to 28", strconv.FormatInt(n, 10))
	}
	return int(n), nil
}

func levelField(req Value, name string) (int, *cmdError) {
	v, e := intField(req, name)
	if e != nil {
		return 0, e
	}
	if v != 0 && v != 1 {
		return 0, valueError(`field "%s" must be 0 or 1, got %s`, name, strconv.FormatInt(v, 10))
	}
	return int(v), nil
}

// intField reads an integer the way the real server's int() does: a JSON
// integer, or a string holding one (its command-line client sends "2").
func intField(req Value, name string) (int64, *cmdError) {
	v, _ := req.Get(name)
	switch v.Kind {
	case Number:
		if v.Num == math.Trunc(v.Num) && math.Abs(v.Num) < 1<<53 {
			return int64(v.Num), nil
		}
	case String:
		if n, err := strconv.ParseInt(strings.TrimSpace(v.Str), 10, 64); err == nil {
			return n, nil
		}
	case Bool:
		if v.Bool {
			return 1, nil
		}
		return 0, nil
	}
	return 0, valueError(`field "%s" must be an integer, got %s`, name, v.String())
}

func floatField(req Value, name string) (float64, *cmdError) {
	v, _ := req.Get(name)
	switch v.Kind {
	case Number:
		return v.Num, nil
	case String:
		if f, err := strconv.ParseFloat(strings.TrimSpace(v.Str), 64); err == nil && !math.IsNaN(f) {
			return f, nil
		}
	}
	return 0, valueError(`field "%s" must be a number, got %s`, name, v.String())
}

func strField(req Value, name string) (string, *cmdError) {
	v, _ := req.Get(name)
	if v.Kind != String {
		return "", valueError(`field "%s" must be a string, got %s`, name, v.String())
	}
	return v.Str, nil
}

type errorString string

func (e errorString) Error() string { return string(e) }
