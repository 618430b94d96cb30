package netsim

import (
	"fmt"
	"strings"

	"github.com/picosim/picosim/internal/closest"
)

// The named settings of the LAN parse themselves (encoding.TextUnmarshaler),
// so that the scenario format, the JSON schema and the picosim command's
// flags take the same words, and say the same thing about a wrong one. Each
// lists its words (Values) for schemas and help.

// enumText parses one of a type's words.
func enumText[T ~uint8](what string, words []string, text []byte, to *T) error {
	for i, w := range words {
		if string(text) == w {
			*to = T(i)
			return nil
		}
	}
	return fmt.Errorf("%s %q: %s%s", what, text, strings.Join(words, " or "), closest.Hint(string(text), words))
}

var addressingWords = []string{"sticky", "new-each-boot", "new-at-expiry"}

func (a Addressing) String() string { return addressingWords[a] }

// Values lists the words Addressing takes.
func (Addressing) Values() []string { return addressingWords }

func (a Addressing) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

func (a *Addressing) UnmarshalText(text []byte) error {
	return enumText("addressing", addressingWords, text, a)
}

var distWords = []string{"uniform", "normal"}

func (d Dist) String() string { return distWords[d] }

// Values lists the words Dist takes.
func (Dist) Values() []string { return distWords }

func (d Dist) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func (d *Dist) UnmarshalText(text []byte) error { return enumText("distribution", distWords, text, d) }

// Radio is the boards' radio: the Pico W's (PicoWRadio, the default: a join
// delay, power saving, lost associations; see PicoW) or a perfect one
// (IdealRadio), for tests of protocol logic.
type Radio uint8

const (
	PicoWRadio Radio = iota
	IdealRadio
)

var radioWords = []string{"picow", "ideal"}

func (r Radio) String() string { return radioWords[r] }

// Values lists the words Radio takes.
func (Radio) Values() []string { return radioWords }

func (r Radio) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

func (r *Radio) UnmarshalText(text []byte) error { return enumText("radio", radioWords, text, r) }

// Profile is the radio's HostConfig.Profile: the Pico W's, or nil.
func (r Radio) Profile() *PicoW {
	if r == PicoWRadio {
		return &PicoW{}
	}
	return nil
}
