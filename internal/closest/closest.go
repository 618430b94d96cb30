// Package closest finds the word a user meant: the command line's flags and
// commands, the scenario format's keys and its fixed words share it, so a
// typo gets the same "did you mean" everywhere.
package closest

import "strings"

// Word returns the candidate nearest to s, if one is near enough to be what
// was meant: at most a third of its letters off (a swap of neighbours
// counts one, as in --nodse), or s begins it.
func Word(s string, candidates []string) string {
	best, bestD := "", len(s)/3+1
	for _, c := range candidates {
		if d := Distance(s, c); d < bestD || (d == bestD && best == "" && d <= 2) {
			best, bestD = c, d
		}
		if strings.HasPrefix(c, s) && len(s) >= 3 && best == "" {
			best = c
		}
	}
	return best
}

// Distance is the Damerau–Levenshtein distance of two short strings.
func Distance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// Hint is "; did you mean X?" for the candidate nearest to s, or "".
func Hint(s string, candidates []string) string {
	if w := Word(s, candidates); w != "" && w != s {
		return "; did you mean " + w + "?"
	}
	return ""
}
