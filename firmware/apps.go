package firmware

import (
	"errors"
	"math/rand/v2"
	"time"

	"github.com/picosim/picosim/node/apps"
	"github.com/picosim/picosim/node/control"
	"github.com/picosim/picosim/node/outbox"
)

// appRun is one app of node/apps the program hosts: the program is its
// driver, mapping its connection ids to the board's and its outbox to the
// Board.
type appRun struct {
	p       *Program
	spec    apps.Spec
	kind    apps.Kind
	app     apps.App
	board   map[control.ConnID]control.ConnID // the app's id -> the board's
	local   map[control.ConnID]control.ConnID // the board's id -> the app's
	nextAcc control.ConnID                    // ids for accepted connections count down from the top
}

// AppState is an app a board runs, and its counters since it booted.
type AppState struct {
	Spec  apps.Spec
	Stats apps.Stats
}

// Apps lists the apps the board runs.
func (p *Program) Apps() []AppState {
	out := make([]AppState, len(p.apps))
	for i, r := range p.apps {
		out[i] = AppState{Spec: r.spec, Stats: r.app.Stats()}
	}
	return out
}

// StartApp starts an app now and keeps it in the settings, so that it
// starts again at every boot, as a program installed on a board does. An
// app of the same name is replaced.
func (p *Program) StartApp(now time.Duration, spec apps.Spec) error {
	err := p.installApp(now, spec)
	p.flush(now)
	return err
}

// installApp starts an app and keeps it in the settings, without carrying
// out what that asks for: start_app runs inside the control server.
func (p *Program) installApp(now time.Duration, spec apps.Spec) error {
	if err := p.startApp(now, spec); err != nil {
		return err
	}
	p.set.Apps = replaceApp(p.set.Apps, spec)
	return p.saveSettings()
}

// StopApp stops an app and removes it from the settings.
func (p *Program) StopApp(now time.Duration, name string) error {
	err := p.uninstallApp(now, name)
	p.flush(now)
	return err
}

func (p *Program) uninstallApp(now time.Duration, name string) error {
	found := p.stopApp(now, name)
	kept := p.set.Apps[:0]
	for _, s := range p.set.Apps {
		if s.App != name {
			kept = append(kept, s)
		}
	}
	p.set.Apps = kept
	if !found {
		return errors.New("no app " + name + " is running")
	}
	return p.saveSettings()
}

func replaceApp(list []apps.Spec, spec apps.Spec) []apps.Spec {
	for i, s := range list {
		if s.App == spec.App {
			list[i] = spec
			return list
		}
	}
	return append(list, spec)
}

func (p *Program) saveSettings() error {
	if err := p.flash.WriteFile(FileSettings, p.set.JSON()); err != nil {
		return errors.New("settings not saved: " + err.Error())
	}
	return nil
}

func (p *Program) startApp(now time.Duration, spec apps.Spec) error {
	k, ok := apps.KindOf(spec.App)
	if !ok {
		return errors.New("no app " + spec.App)
	}
	if spec.ServerIP.IsZero() && spec.Server != "" && spec.App != "rgb-client-robust" && p.node != nil {
		for i := 0; i < p.node.Len(); i++ { // a fixed address: the server's now
			if m := p.node.MemberAt(i); m.Name == spec.Server {
				spec.ServerIP = m.IP
			}
		}
	}
	seed := p.opt.Seed ^ uint64(p.inc)<<32
	for _, c := range spec.App {
		seed = seed*31 + uint64(c)
	}
	a, err := apps.New(spec, p.name, now, rand.NewPCG(seed, uint64(len(p.apps))))
	if err != nil {
		return err
	}
	p.stopApp(now, spec.App)
	r := &appRun{p: p, spec: spec, kind: k, app: a, board: map[control.ConnID]control.ConnID{},
		local: map[control.ConnID]control.ConnID{}, nextAcc: ^control.ConnID(0)}
	p.apps = append(p.apps, r)
	if p.node != nil {
		if p.online {
			for _, pt := range r.ports() {
				if err := p.b.Listen(pt); err != nil {
					p.log(now, "listen_error", portName(pt)+": "+err.Error())
				}
			}
		}
		a.Step(now, apps.Input{Kind: apps.Viewed, View: p.appView()})
	}
	p.changed = true
	return nil
}

func (p *Program) stopApp(now time.Duration, name string) bool {
	for i, r := range p.apps {
		if r.spec.App != name {
			continue
		}
		for c := range r.local {
			p.b.Close(c)
			delete(p.owner, c)
		}
		p.apps = append(p.apps[:i], p.apps[i+1:]...)
		for _, pt := range r.ports() {
			if p.appOnPort(pt.TCP, pt.Num) == nil {
				p.b.Unlisten(pt)
			}
		}
		p.changed = true
		return true
	}
	return false
}

// appOnPort returns the app listening on a port, or nil.
func (p *Program) appOnPort(tcp bool, port uint16) *appRun {
	for _, r := range p.apps {
		if (tcp && r.kind.TCP == port) || (!tcp && r.kind.UDP == port) {
			return r
		}
	}
	return nil
}

// appView is the cluster as the board sees it, for its apps.
func (p *Program) appView() apps.View {
	v := apps.View{Self: p.ip, Members: p.node.Members()}
	if m, ok := p.node.Master(); ok {
		v.Master = m.IP
	}
	return v
}

func (r *appRun) ports() []Port {
	var out []Port
	if r.kind.TCP != 0 {
		out = append(out, Port{TCP: true, Num: r.kind.TCP})
	}
	if r.kind.UDP != 0 {
		out = append(out, Port{Num: r.kind.UDP})
	}
	return out
}

func (r *appRun) bind(boardID, appID control.ConnID) {
	r.board[appID], r.local[boardID] = boardID, appID
	r.p.owner[boardID] = r
}

func (r *appRun) forget(boardID control.ConnID) {
	delete(r.board, r.local[boardID])
	delete(r.local, boardID)
	delete(r.p.owner, boardID)
}

func (r *appRun) accepted(now time.Duration, c control.ConnID) {
	id := r.nextAcc
	r.nextAcc--
	r.bind(c, id)
	r.app.Step(now, apps.Input{Kind: apps.Accepted, Conn: id})
}

func (r *appRun) connected(now time.Duration, c control.ConnID, err error) {
	id := r.local[c]
	if err != nil {
		r.forget(c)
	}
	r.app.Step(now, apps.Input{Kind: apps.Connected, Conn: id, Err: err})
}

func (r *appRun) closed(now time.Duration, c control.ConnID) {
	id := r.local[c]
	r.forget(c)
	r.app.Step(now, apps.Input{Kind: apps.Closed, Conn: id})
}

var errOffline = errors.New("network down")

// flush carries out the app's outbox; it reports whether there was any.
func (r *appRun) flush(now time.Duration) bool {
	p := r.p
	rd := r.app.Ready()
	busy := len(rd.Datagrams)+len(rd.Dials)+len(rd.Writes)+len(rd.Closes)+len(rd.Pins) > 0
	if !busy {
		return false
	}
	for _, d := range rd.Datagrams {
		if p.online {
			p.b.SendUDP(d.From, d.To, d.Port, d.Payload)
		}
	}
	var cut []control.ConnID
	for _, w := range rd.Writes {
		if c, ok := r.board[w.Conn]; ok {
			if err := p.b.Write(c, w.Data); err == ErrCutOff {
				cut = append(cut, c)
			}
		}
	}
	for _, id := range rd.Closes {
		if c, ok := r.board[id]; ok {
			r.forget(c)
			p.b.Close(c)
		}
	}
	for _, pc := range rd.Pins {
		p.ctlDirty = true
		if err := p.ctl.Drive(pc.At, pc.Pin, pc.Value); err != nil {
			p.log(now, EvAppError, r.spec.App+": "+err.Error())
		}
	}
	var dials []outbox.Dial
	if len(rd.Dials) > 0 {
		dials = append(dials, rd.Dials...)
	}
	r.app.Advance()
	for _, c := range cut { // after Advance, as the outbox was being read
		if _, ok := r.local[c]; ok {
			p.cutOffOne(now, r.spec.App+": connection "+itoa(int(c))+": its peer")
			r.closed(now, c)
		}
	}
	for _, d := range dials { // after Advance: the outcome may come from within Dial
		c := p.nextDial
		p.nextDial++
		if p.nextDial == 0 {
			p.nextDial = DialBase
		}
		r.bind(c, d.Conn)
		err := errOffline
		if p.online {
			err = p.b.Dial(c, d.To, d.Port)
		}
		if err != nil {
			r.connected(now, c, err)
		}
	}
	return true
}

// extensions are the control actions the firmware adds to the protocol's:
// get_state, start_app and stop_app.
func (p *Program) extensions() []control.Extension {
	return []control.Extension{
		{Name: "get_state", Do: func(now time.Duration, _ control.Value) ([]control.Field, error) {
			e := control.Enc{B: make([]byte, 0, cap(p.line))} // the last state line's size: one allocation
			p.appendState(&e, now)
			return []control.Field{{Key: "state", Val: control.Raw(e.B)}}, nil
		}},
		{Name: "start_app", Do: func(now time.Duration, req control.Value) ([]control.Field, error) {
			spec, err := parseApp(req)
			if err != nil {
				return nil, err
			}
			return nil, p.installApp(now, spec)
		}},
		{Name: "stop_app", Do: func(now time.Duration, req control.Value) ([]control.Field, error) {
			name, ok := req.Get("app")
			if !ok || name.Kind != control.String {
				return nil, errors.New(`stop_app needs "app"`)
			}
			return nil, p.uninstallApp(now, name.Str)
		}},
	}
}
