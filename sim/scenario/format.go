// Package scenario provides picosim's YAML scenarios: the format, a strict
// loader whose errors name file:line:column and suggest the field meant, and
// a runner that plays a scenario on a simulated cluster in simulated time.
// scenarios/README.md documents the format with an example per feature.
package scenario

import (
	"fmt"

	"github.com/picosim/picosim/netsim"

	"strconv"
	"strings"
	"time"
)

// Scenario is one YAML file.
type Scenario struct {
	Name        string   `yaml:"name"`
	Description string   `yaml:"description"`
	Labels      []string `yaml:"labels"`
	// Seed drives every random choice; `picosim run --seed` overrides it.
	Seed uint64 `yaml:"seed"`
	// Timeout bounds the scenario's time (simulated on sim, wall-clock on
	// emulated and real boards). Default 10m.
	Timeout Duration `yaml:"timeout"`
	// Targets are where the scenario can run, each with the node timings
	// it runs with there: `targets: [sim, emulated]`, or
	// `targets: {sim: {}, emulated: {heartbeat: 250ms}}`. Default: sim.
	Targets  Targets  `yaml:"targets"`
	Topology Topology `yaml:"topology"`
	Steps    []Step   `yaml:"steps"`

	File string `yaml:"-"` // where it was loaded from
}

// Targets maps each target a scenario supports (sim, emulated, hw, rp2040) to the
// settings it runs with there.
type Targets map[string]TargetSettings

// TargetSettings override the topology's node timings on one target:
// emulated and real boards live in wall-clock time, so a faster heartbeat
// makes a failover take a second there rather than five.
type TargetSettings struct {
	Heartbeat Duration `yaml:"heartbeat"`
	MissLimit int      `yaml:"miss_limit"`
}

// UnmarshalYAML decodes a list or a map from the parsed document itself,
// through go-yaml's callback: a []byte UnmarshalYAML would be given the
// value written out again (its aliases expanded) and parse it anew, twice
// here, which took 150 MB for a 64 KiB list; and its errors would be
// placed in that text rather than in the file.
func (t *Targets) UnmarshalYAML(unmarshal func(any) error) error {
	var list []string
	if err := unmarshal(&list); err == nil {
		*t = Targets{}
		for _, k := range list {
			(*t)[k] = TargetSettings{}
		}
		return nil
	}
	var m map[string]TargetSettings
	if err := unmarshal(&m); err != nil {
		return &valueError{what: "targets: a list such as [sim, emulated], or a map such as {emulated: {heartbeat: 250ms}}", err: err}
	}
	*t = m
	return nil
}

// valueError is why a field that decodes itself (targets, boards) refused
// its value: what the field takes, and go-yaml's error, which says where.
type valueError struct {
	what string
	err  error
}

func (e *valueError) Error() string { return e.what + ": " + e.err.Error() }
func (e *valueError) Unwrap() error { return e.err }

// Topology is the cluster a scenario runs on.
type Topology struct {
	// Boards is a count (named by NamePattern, default pico%d, in address
	// order) or a list of boards with names and pins.
	Boards      Boards   `yaml:"boards"`
	NamePattern string   `yaml:"name_pattern"`
	Network     Network  `yaml:"network"`
	Heartbeat   Duration `yaml:"heartbeat"`
	MissLimit   int      `yaml:"miss_limit"`
	// RevertOnLoss: boards revert held pins when they lose their master or
	// the connection that wrote them.
	RevertOnLoss bool `yaml:"revert_on_loss"`
	// Capture writes a pcapng file of the run (picosim run --pcap DIR says
	// where).
	Capture bool `yaml:"capture"`
	// WiFiWatchdog is the boards' WiFi watchdog (default true): a board
	// that hears no other for four failover bounds, having heard one, or
	// that is not on the network 30 s after its join began, joins WiFi
	// again. false shows what the boards of the issues did: stay deaf.
	WiFiWatchdog *bool `yaml:"wifi_watchdog"`
	// ControlTLS: the boards serve control over TLS with a certificate and
	// key in their flash, as piconetcontrol's server does, and controllers
	// speak TLS (emulated boards; elsewhere the scenario is skipped, saying
	// why).
	ControlTLS bool `yaml:"control_tls"`
}

// Boards is `boards: 3`, or a list: `boards: [{name: ap}, {name: s1, pins:
// {2: output}}]`.
type Boards struct {
	Count int
	List  []BoardSpec
}

// BoardSpec is one board of a list: its name and the pins its firmware sets
// up at boot: input, output (low) or output-high.
type BoardSpec struct {
	Name string         `yaml:"name"`
	Pins map[int]string `yaml:"pins"`
	// Off: the board starts powered off, until a power_on step: a board
	// that joins later.
	Off bool `yaml:"off"`
}

// UnmarshalYAML decodes from the parsed document, as Targets does.
func (b *Boards) UnmarshalYAML(unmarshal func(any) error) error {
	var n int
	if err := unmarshal(&n); err == nil {
		b.Count = n
		return nil
	}
	var list []BoardSpec
	if err := unmarshal(&list); err != nil {
		return &valueError{what: "boards: a count such as 3, or a list of {name, pins}", err: err}
	}
	b.List, b.Count = list, len(list)
	return nil
}

// Network is the LAN: its mode, the boards' radio, and impairments.
type Network struct {
	// Mode is router (default) or softap: then the first board is the
	// access point.
	Mode string `yaml:"mode"`
	// Radio is picow (default: join delay, power saving, lost
	// associations) or ideal.
	Radio netsim.Radio `yaml:"radio"`
	// Addressing is sticky (default) or new-each-boot.
	Addressing netsim.Addressing `yaml:"addressing"`
	// The link of every frame a board receives, unless Boards or Pairs say
	// otherwise for a board or a pair.
	Link   `yaml:",inline"`
	Boards map[string]Link `yaml:"boards"`
	Pairs  []Pair          `yaml:"pairs"`
	// Radios gives boards a Pico W radio of their own: its failure modes
	// and their rates (scenarios/README.md has the table and the sources).
	Radios map[string]RadioSpec `yaml:"radios"`
	// Include names a file (relative to the scenario's) whose network
	// section gives pairs, boards and radios before the scenario's own: a
	// link profile `picosim calibrate` wrote.
	Include string `yaml:"include"`
	// Key, 32 to 64 hex digits (16 to 32 bytes), turns on keyed discovery
	// and keyed control: every board holds it in its settings, and the
	// scenario's controller and desktop client sign with it. Forged frames
	// and unsigned commands are then refused and counted (counters
	// unauthenticated, stale, auth_failures).
	Key string `yaml:"key"`
}

// Link is the impairment of what a board receives: every one netsim has.
type Link struct {
	Loss Rate `yaml:"loss"`
	// Burst loss (Gilbert–Elliott): bursts of mean length burst_length
	// frames make up loss of the frames.
	BurstLength float64  `yaml:"burst_length"`
	Latency     Duration `yaml:"latency"`
	Jitter      Duration `yaml:"jitter"`
	// Distribution of the jitter: uniform (default) or normal.
	Distribution netsim.Dist `yaml:"distribution"`
	Tail         Rate        `yaml:"tail"`      // share of frames with an extra exponential delay...
	TailMean     Duration    `yaml:"tail_mean"` // ...of this mean
	Duplicate    Rate        `yaml:"duplicate"`
	Reorder      Rate        `yaml:"reorder"`
	Corrupt      Rate        `yaml:"corrupt"`
	Rate         int64       `yaml:"rate"`  // bytes per second
	Queue        int         `yaml:"queue"` // frames waiting at the rate limit
}

// RadioSpec is one board's Pico W radio (netsim.PicoW): what it does
// beyond loss and latency. Zero fields keep the Pico W's defaults; the
// failure modes are off unless set.
type RadioSpec struct {
	// SilentEvery: on average how often the radio goes silent — says it is
	// joined, delivers nothing either way (pico-sdk#2153).
	SilentEvery Duration `yaml:"silent_every"`
	// StallEvery: on average how often WiFi "stops": silent, and outbound
	// connects fail at once (MicroPython v1.24).
	StallEvery Duration `yaml:"stall_every"`
	// WedgeEvery: on average how often the board's TCP listeners stop
	// sending SYN-ACKs (cyw43439#82).
	WedgeEvery Duration `yaml:"wedge_every"`
	// DHCPFail: the share of DHCP tries that fail (cyw43439#53: about
	// half); three failed tries of 3 s leave the board off the network.
	DHCPFail Rate `yaml:"dhcp_fail"`
	// AssocLossEvery: on average how often the association drops and the
	// radio joins again by itself (default 1h).
	AssocLossEvery Duration `yaml:"assoc_loss_every"`
	// JoinMin and JoinMax bound the join delay (default 1.5s to 4s).
	JoinMin Duration `yaml:"join_min"`
	JoinMax Duration `yaml:"join_max"`
	// PowerSaveOff: no power saving (wlan.config(pm=PM_NONE)).
	PowerSaveOff bool `yaml:"power_save_off"`
	// WakeOnWLAN (default true): a frame for the board wakes it from light
	// sleep, as a Pico W's radio does. false: frames wait in the radio,
	// unacknowledged, until the sleep ends or a revert wakes the board
	// (MicroPython's lightsleep before micropython#9438, a dormant sleep).
	WakeOnWLAN *bool `yaml:"wake_on_wlan"`
}

// RadioFault puts a board's radio in a fault state now (sim and emulated
// targets): silent (joined, nothing flows) or stall (silent, and connects
// fail at once), until the board joins WiFi again, which its watchdog does
// unless topology.wifi_watchdog is false; or no_synack: its TCP listeners
// stop answering connection attempts (cyw43439#82) until the board opens
// them again, which its watchdog does after two unanswered attempts.
type RadioFault struct {
	Board string `yaml:"board"`
	Fault string `yaml:"fault"`
}

// Pair is the link of frames from one board to another.
type Pair struct {
	From string `yaml:"from"`
	To   string `yaml:"to"`
	Link `yaml:",inline"`
}

// Step is one action, at an absolute simulated time (At) or after the
// previous step (After; default 0). Exactly one action is set.
type Step struct {
	At    *Duration `yaml:"at"`
	After *Duration `yaml:"after"`

	PowerOff   string      `yaml:"power_off"`
	PowerOn    string      `yaml:"power_on"`
	Reboot     string      `yaml:"reboot"`
	Partition  [][]string  `yaml:"partition"`
	Heal       bool        `yaml:"heal"`
	SetLink    *SetLink    `yaml:"set_link"`
	Control    *Control    `yaml:"control"`
	App        *App        `yaml:"app"`
	Wait       *Duration   `yaml:"wait"`
	Hello      *Hello      `yaml:"hello"`
	Expect     *Expect     `yaml:"expect"`
	Forge      *Forge      `yaml:"forge"`
	Attack     *Attack     `yaml:"attack"`
	RadioFault *RadioFault `yaml:"radio_fault"`
}

// Forge has a rogue host on the LAN send forged discovery frames, without
// the key (sim target): Count frames, Every apart (default 1, 1s), the first
// at once and the rest while the scenario goes on.
type Forge struct {
	// Type: hello, full, heartbeat, leave or garbage.
	Type string `yaml:"type"`
	// From is the address the frames claim; As, a board whose address (and
	// incarnation, for heartbeat and leave) they claim. Default: the
	// rogue's own address.
	From string `yaml:"from"`
	As   string `yaml:"as"`
	// To is a board; default the broadcast.
	To string `yaml:"to"`
	// Heartbeat fields: name, incarnation, seq (default 1, then one more
	// per frame), worker slot (0: a master's).
	Name        string `yaml:"name"`
	Incarnation uint32 `yaml:"incarnation"`
	Seq         uint32 `yaml:"seq"`
	Slot        uint16 `yaml:"slot"`
	// Members a FULL lists: board names, or others (at 192.0.2.x).
	Members []string `yaml:"members"`
	// Bytes of garbage (default 32).
	Bytes int      `yaml:"bytes"`
	Count int      `yaml:"count"`
	Every Duration `yaml:"every"`
}

// Attack starts a hostile control client against a board, for For (default
// 30s) while the scenario goes on (sim target): non-reader (pipelines
// pings, reads nothing), slowloris (holds connections a byte at a time),
// oversized (a line of Bytes, default 1 MiB, then a ping) or half-close
// (a ping, then it shuts its side: the step fails unless the reply comes).
type Attack struct {
	Board       string   `yaml:"board"`
	Kind        string   `yaml:"kind"`
	Connections int      `yaml:"connections"` // slowloris: at once (default 4)
	Bytes       int      `yaml:"bytes"`
	For         Duration `yaml:"for"`
}

// SetLink changes what one board receives through (board), or the frames
// from one board to another (from and to: one way; both_ways: the two
// directions). A set_link from/to with no impairment puts the pair back on
// the receiver's own link.
type SetLink struct {
	Board    string `yaml:"board"`
	From     string `yaml:"from"`
	To       string `yaml:"to"`
	BothWays bool   `yaml:"both_ways"`
	Link     `yaml:",inline"`
}

// Control sends control-protocol commands to a board from a controller on
// the LAN, each with the fields its reply must have.
type Control struct {
	Board    string    `yaml:"board"`
	Commands []Command `yaml:"commands"`
	// Disconnect closes the connection after the commands, as a controller
	// that goes away.
	Disconnect bool `yaml:"disconnect"`
	// Unsigned sends the commands from an intruder's controller, which
	// does not hold network.key (sim target).
	Unsigned bool `yaml:"unsigned"`
	// Controller names who sends them: each name is a controller of its
	// own, with its own connection (on sim, a host of its own on the LAN;
	// on emulated and real boards, a connection of its own from the
	// harness). Default laptop.
	Controller string `yaml:"controller"`
	// Timeout bounds the wait for each reply (default 10s).
	Timeout Duration `yaml:"timeout"`
	// Unreachable: the board must not answer: every connect (with retries,
	// if set) fails, or the first command gets no reply. Commands are then
	// what is tried: at least one.
	Unreachable bool `yaml:"unreachable"`
	// Retries: a command whose reply does not come within the timeout,
	// whose connection fails, or that the board refuses for too many
	// connections, is sent again on a new connection after a pause (200ms,
	// doubling), up to this many times (default 0), as a careful
	// controller does.
	Retries int `yaml:"retries"`
}

// Command is one command and, optionally, what its reply must contain.
type Command struct {
	Send map[string]any `yaml:"send"`
	// Raw is a line sent as it is, instead of Send: not JSON, oversized,
	// two commands on one line.
	Raw   string         `yaml:"raw"`
	Reply map[string]any `yaml:"reply"`
	// Has: fields the reply must have, whatever their values.
	Has []string `yaml:"has"`
	// Error: the reply must be an error whose message contains this;
	// Exception: whose exception class is this (AuthError, ValueError...).
	Error     string `yaml:"error"`
	Exception string `yaml:"exception"`
}

// Hello broadcasts a HELLO from a desktop client on the LAN, as the script
// of shared/seeds/003, and expects FULL from the registry listing Members
// boards (0: every board that is up).
type Hello struct {
	Members int `yaml:"members"`
	// Names: the boards FULL must list, in any order (instead of a count).
	Names  []string `yaml:"names"`
	Within Duration `yaml:"within"` // default 2s
	// None: no FULL may answer within the time (the registry is cut off,
	// or the HELLO is unsigned on a keyed network).
	None bool `yaml:"none"`
	// Unsigned: the desktop client does not hold network.key.
	Unsigned bool `yaml:"unsigned"`
}

// App starts or stops an app of node/apps on a board.
type App struct {
	Board string `yaml:"board"`
	// Start or Stop names the app: bus, rgb-server, rgb-client-naive,
	// rgb-client-robust, echo-server, echo-client.
	Start string `yaml:"start"`
	Stop  string `yaml:"stop"`
	// Server is the board a client talks to (found by name through
	// discovery by the robust client; by its address now for the others).
	Server string `yaml:"server"`
	// Interval between a client's messages.
	Interval Duration `yaml:"interval"`
}

// Expect states what must hold: Eventually within a duration, Consistently
// for a duration, or now.
type Expect struct {
	Eventually   *Duration         `yaml:"eventually"`
	Consistently *Duration         `yaml:"consistently"`
	OneMaster    bool              `yaml:"one_master"`
	MasterIs     string            `yaml:"master_is"`
	MembersAgree bool              `yaml:"members_agree"`
	Roles        map[string]string `yaml:"roles"`
	Pin          *PinValue         `yaml:"pin"`
	NoRoleChange bool              `yaml:"no_role_change"`
	// NoMembershipChange: no board sees a member join or leave from the
	// step's start (with consistently: throughout its window).
	NoMembershipChange bool `yaml:"no_membership_change"`
	// SinceStep starts the window of no_role_change and
	// no_membership_change when that step (1 for the first) began, not
	// this one: "nothing changed since the cluster first agreed".
	SinceStep int `yaml:"since_step"`
	// MasterWas: the master is the board that had this role (MASTER,
	// WORKER1...) when step at_step began: "the first worker took over".
	MasterWas string `yaml:"master_was"`
	// SameRoles: every board has the role it had when step at_step began
	// (off counts as a role): "the roles came back after the heal".
	SameRoles bool `yaml:"same_roles"`
	// AtStep is the earlier step (1 for the first) master_was and
	// same_roles refer to.
	AtStep   int       `yaml:"at_step"`
	AppRate  *AppRate  `yaml:"app_rate"`
	Counter  *Counter  `yaml:"counter"`
	Reverted *Reverted `yaml:"reverted"`
	// NotReverted: the fail-safe did not revert a board's pin, before By
	// (after the scenario's start) or, without By, at all so far.
	NotReverted *Reverted `yaml:"not_reverted"`
}

// PinValue: a board's GPIO holds a level.
type PinValue struct {
	Board string `yaml:"board"`
	Pin   int    `yaml:"pin"`
	Value int    `yaml:"value"`
}

// Reverted: a board's pin was reverted by the fail-safe, no later than By
// after the scenario's start.
type Reverted struct {
	Board string   `yaml:"board"`
	Pin   int      `yaml:"pin"`
	By    Duration `yaml:"by"`
}

// AppRate: an app's success rate, summed over the boards that run it (or
// on one board), is at least AtLeast (or below Below, to show a naive app
// failing).
type AppRate struct {
	App     string `yaml:"app"`
	Board   string `yaml:"board"`
	AtLeast *Rate  `yaml:"at_least"`
	Below   *Rate  `yaml:"below"`
}

// Counter compares one of a board's counters with a value. Names: the
// LAN's (sent, delivered, lost, overflow, partitioned, down, too_big,
// unassociated, duplicated, reordered, corrupted) and the discovery core's
// (received, malformed, ignored, hellos_answered, fulls_sent,
// heartbeats_sent, claims; keyed: unauthenticated, stale) and the firmware's
// (auth_failures, cut_off).
type Counter struct {
	Board   string  `yaml:"board"`
	Name    string  `yaml:"name"`
	AtLeast *uint64 `yaml:"at_least"`
	AtMost  *uint64 `yaml:"at_most"`
}

// Duration is a simulated duration written as Go does: 1.5s, 200ms, 10m.
type Duration time.Duration

func (d *Duration) UnmarshalYAML(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"'`)
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("%q is not a duration such as 1.5s, 200ms or 10m", s)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) D() time.Duration { return time.Duration(d) }
func (d Duration) String() string   { return time.Duration(d).String() }

// Rate is a probability written as 10% or 0.1.
type Rate float64

func (r *Rate) UnmarshalYAML(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"'`)
	pct := strings.HasSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if pct {
		v /= 100
	}
	if err != nil || v < 0 || v > 1 {
		return fmt.Errorf("%q is not a rate such as 10%% or 0.1", s)
	}
	*r = Rate(v)
	return nil
}
