package main

import (
	"fmt"
	"strconv"
	"strings"
)

// shard i of n (1-based i) of a range of seeds holds the seeds at positions
// p (0-based within the range) with p mod n = i-1: round robin rather than
// blocks, so that every shard gets seeds from the whole range and the same
// share of any slow ones.
type shard struct{ i, n uint64 }

// jobIndexEnv is where a Kubernetes Indexed Job puts a pod's completion
// index, 0 to completions-1.
const jobIndexEnv = "JOB_COMPLETION_INDEX"

// parseShard reads "I/N", or "auto/N" with I from $JOB_COMPLETION_INDEX+1
// (getenv looks it up).
func parseShard(s string, getenv func(string) string) (shard, error) {
	is, ns, ok := strings.Cut(s, "/")
	if !ok {
		return shard{}, fmt.Errorf("--shard %q: I/N, such as 3/8 (the 3rd of 8 shards), or auto/N in a Kubernetes Indexed Job", s)
	}
	n, err := strconv.ParseUint(ns, 10, 64)
	if err != nil || n == 0 {
		return shard{}, fmt.Errorf("--shard %q: N must be a whole number of shards, 1 or more", s)
	}
	if is == "auto" {
		env := getenv(jobIndexEnv)
		if env == "" {
			return shard{}, fmt.Errorf("--shard %s: $%s is not set (Kubernetes sets it in an Indexed Job); give the shard as I/%d", s, jobIndexEnv, n)
		}
		idx, err := strconv.ParseUint(env, 10, 64)
		if err != nil || idx >= n {
			return shard{}, fmt.Errorf("--shard %s: $%s is %q, but the shards are 0 to %d: the Job's completions must be %d", s, jobIndexEnv, env, n-1, n)
		}
		return shard{idx + 1, n}, nil
	}
	i, err := strconv.ParseUint(is, 10, 64)
	if err != nil || i < 1 || i > n {
		return shard{}, fmt.Errorf("--shard %q: I must be 1 to %d (shards count from 1)", s, n)
	}
	return shard{i, n}, nil
}

func (s shard) String() string { return fmt.Sprintf("%d/%d", s.i, s.n) }

// fits refuses more shards than seeds: an empty shard is a mistake in the
// arithmetic of whoever split the sweep.
func (s shard) fits(first, last uint64) error {
	if runs := last - first + 1; s.n > runs {
		return fmt.Errorf("--shard %s: seeds %d-%d are %d runs, fewer than %d shards", s, first, last, runs, s.n)
	}
	return nil
}

// count is how many seeds of first..last the shard holds.
func (s shard) count(first, last uint64) uint64 {
	total := last - first + 1
	if s.i > total {
		return 0
	}
	return (total-s.i)/s.n + 1
}

// seed is the shard's k-th seed (from 0).
func (s shard) seed(first, k uint64) uint64 { return first + s.i - 1 + k*s.n }

// has reports whether the shard holds seed, one of a range from first.
func (s shard) has(first, seed uint64) bool { return (seed-first)%s.n == s.i-1 }
