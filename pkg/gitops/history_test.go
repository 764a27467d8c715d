package gitops

import (
	"context"
	"errors"
	"io/fs"
	"reflect"
	"strings"
	"testing"

	"github.com/canarybot/canarybot/pkg/canary"
)

func TestTrailersRoundTripThroughLog(t *testing.T) {
	ctx := context.Background()
	rm := newRemote(t)
	seed := rm.head(t)
	o := testOptions(t, rm.url)
	r := openRepo(t, o)
	trailers := []canary.Trailer{
		{Key: canary.TrailerPlan, Value: "llama"},
		{Key: canary.TrailerStep, Value: "2"},
		{Key: canary.TrailerArtifact, Value: "oci://reg/llama@sha256:abc"},
		{Key: canary.TrailerAction, Value: "advance"},
	}
	res, err := r.Transact(ctx, func(context.Context, canary.Tree) (*canary.Change, error) {
		return &canary.Change{
			Files:    map[string][]byte{canary.StatePath("llama"): []byte("step: 2\n")},
			Subject:  "canary llama: step 2",
			Body:     "Weight 25.\n\nEvidence: p99 ok.",
			Trailers: trailers,
		}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A fresh in-memory reader sees the same history as the clone.
	mem, err := OpenReadOnly(ctx, Options{URL: rm.url})
	if err != nil {
		t.Fatal(err)
	}
	for name, rd := range map[string]*Reader{"clone": r.Reader, "memory": mem} {
		log, err := rd.Log(ctx, "", 10)
		if err != nil {
			t.Fatalf("%s: Log: %v", name, err)
		}
		if len(log) != 2 || log[0].SHA != res.SHA || log[1].SHA != seed {
			t.Fatalf("%s: log %+v", name, log)
		}
		c := log[0]
		if c.Subject != "canary llama: step 2" || !reflect.DeepEqual(c.Trailers, trailers) {
			t.Errorf("%s: subject %q trailers %+v", name, c.Subject, c.Trailers)
		}
		if v, ok := c.Trailer("canarybot-artifact"); !ok || v != "oci://reg/llama@sha256:abc" {
			t.Errorf("%s: Trailer lookup = %q, %v", name, v, ok)
		}
		if !c.Time.Equal(o.Clock.Now()) || c.Author != "canarybot <"+DefaultAuthorEmail+">" {
			t.Errorf("%s: time %v author %q", name, c.Time, c.Author)
		}
		if log[1].Trailers != nil || log[1].Subject != "seed" {
			t.Errorf("%s: seed commit %+v", name, log[1])
		}
	}
	if log, err := r.Log(ctx, "", 1); err != nil || len(log) != 1 {
		t.Errorf("limit 1: %d commits, %v", len(log), err)
	}
	if log, err := r.Log(ctx, seed, 0); err != nil || len(log) != 1 || log[0].SHA != seed {
		t.Errorf("log from seed: %+v, %v", log, err)
	}
}

func TestParseTrailers(t *testing.T) {
	for _, tc := range []struct {
		name, msg string
		want      []canary.Trailer
	}{
		{"subject only", "Canarybot-Plan: x", nil},
		{"subject and trailers", "s\n\nA: 1\nB-c: two words\n", []canary.Trailer{{Key: "A", Value: "1"}, {Key: "B-c", Value: "two words"}}},
		{"body before trailers", "s\n\nbody: not a trailer\nmore\n\nA: 1", []canary.Trailer{{Key: "A", Value: "1"}}},
		{"last paragraph is prose", "s\n\nA: 1\n\nJust prose.", nil},
		{"one bad line spoils it", "s\n\nA: 1\nnot a trailer", nil},
		{"key with space", "s\n\nBad Key: 1", nil},
		{"value with colon", "s\n\nArtifact: oci://r/m@sha256:ab", []canary.Trailer{{Key: "Artifact", Value: "oci://r/m@sha256:ab"}}},
		{"continuation line", "s\n\nA: one\n  two\nB: 3", []canary.Trailer{{Key: "A", Value: "one two"}, {Key: "B", Value: "3"}}},
		{"CRLF and trailing space", "s\r\n\r\nA: 1\r\n\r\n  \n", []canary.Trailer{{Key: "A", Value: "1"}}},
		{"comment skipped", "s\n\n# comment\nA: 1", []canary.Trailer{{Key: "A", Value: "1"}}},
		{"empty value", "s\n\nA:", []canary.Trailer{{Key: "A", Value: ""}}},
		{"empty", "", nil},
	} {
		if got := ParseTrailers(tc.msg); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: ParseTrailers(%q) = %+v, want %+v", tc.name, tc.msg, got, tc.want)
		}
	}
}

func TestFormatMessageParsesBack(t *testing.T) {
	ch := &canary.Change{Subject: " s ", Body: "\nbody\n\n", Trailers: []canary.Trailer{{Key: "A", Value: " 1 "}, {Key: "A", Value: "2"}}}
	msg, err := FormatMessage(ch)
	if err != nil {
		t.Fatal(err)
	}
	if msg != "s\n\nbody\n\nA: 1\nA: 2\n" {
		t.Errorf("message %q", msg)
	}
	if got := ParseTrailers(msg); !reflect.DeepEqual(got, []canary.Trailer{{Key: "A", Value: "1"}, {Key: "A", Value: "2"}}) {
		t.Errorf("parsed back %+v", got)
	}
	if msg, _ := FormatMessage(&canary.Change{Subject: "s"}); msg != "s\n" {
		t.Errorf("subject only: %q", msg)
	}
}

func TestLastCommitAndContains(t *testing.T) {
	ctx := context.Background()
	rm := newRemote(t)
	seed := rm.head(t)
	c2 := rm.humanCommit(t, "llama weight", map[string]string{"apps/llama/overlay/weights.yaml": "weight: 10\n"})
	c3 := rm.humanCommit(t, "mistral new file", map[string]string{"apps/mistral/overlay/extra.yaml": "x\n"})
	r := openRepo(t, testOptions(t, rm.url))

	for _, tc := range []struct {
		head  string
		paths []string
		want  string
	}{
		{"", []string{"apps/llama"}, c2},
		{"", []string{"apps/llama/overlay/weights.yaml"}, c2},
		{"", []string{"apps/llama/base/inference.yaml"}, seed}, // root commit
		{"", []string{"apps/llama/overlay/weights.yaml", "apps/mistral"}, c3},
		{"", []string{"/apps/mistral/"}, c3},
		{"", []string{"no/such/path"}, ""},
		{"", []string{"README.md/inside-a-file"}, ""},
		{c2, []string{"apps/mistral"}, seed},
		{c2, nil, c2},
		{"main", []string{"."}, c3},
	} {
		got, err := r.LastCommit(ctx, tc.head, tc.paths...)
		if err != nil || got != tc.want {
			t.Errorf("LastCommit(%q, %q) = %q, %v; want %q", tc.head, tc.paths, got, err, tc.want)
		}
	}
	if _, err := r.LastCommit(ctx, "no-such-branch", "x"); !errors.Is(err, ErrUnknownRevision) {
		t.Errorf("unknown head: %v", err)
	}

	for _, tc := range []struct {
		rev, anc string
		want     bool
	}{
		{c3, seed, true}, {c3, c2, true}, {c2, c2, true}, {"", seed, true},
		{seed, c3, false}, {c2, c3, false},
		{c3, strings.Repeat("ab", 20), false}, // a SHA the store never saw
	} {
		got, err := r.Contains(ctx, tc.rev, tc.anc)
		if err != nil || got != tc.want {
			t.Errorf("Contains(%.8s, %.8s) = %v, %v; want %v", tc.rev, tc.anc, got, err, tc.want)
		}
	}
	if _, err := r.Contains(ctx, c3, "no-such-branch"); !errors.Is(err, ErrUnknownRevision) {
		t.Errorf("unknown ancestor ref: %v", err)
	}
	if _, err := r.Contains(ctx, strings.Repeat("cd", 20), seed); !errors.Is(err, ErrUnknownRevision) {
		t.Errorf("unknown rev: %v", err)
	}
}

func TestReaderFilesAndFetch(t *testing.T) {
	ctx := context.Background()
	rm := newRemote(t)
	seed := rm.head(t)
	rd, err := OpenReadOnly(ctx, Options{URL: rm.url})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := rd.ReadFile(ctx, "", "apps/llama/overlay/weights.yaml"); err != nil || string(b) != "weight: 0\n" {
		t.Errorf("ReadFile = %q, %v", b, err)
	}
	if _, err := rd.ReadFile(ctx, "", "apps/llama/missing.yaml"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	files, err := rd.ListFiles(ctx, "", "apps/llama")
	want := []string{"apps/llama/base/inference.yaml", "apps/llama/overlay/weights.yaml"}
	if err != nil || !reflect.DeepEqual(files, want) {
		t.Errorf("ListFiles = %v, %v; want %v", files, err, want)
	}
	if all, err := rd.ListFiles(ctx, seed, ""); err != nil || len(all) != len(seedFiles()) {
		t.Errorf("ListFiles of the whole tree = %v, %v", all, err)
	}
	for _, dir := range []string{"no/such/dir", "README.md", "README.md/x"} {
		if none, err := rd.ListFiles(ctx, "", dir); err != nil || len(none) != 0 {
			t.Errorf("ListFiles(%q) = %v, %v; want nothing", dir, none, err)
		}
	}
	if _, err := rd.ReadFile(ctx, "", "README.md/x"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("file under a file: %v", err)
	}
	if _, err := rd.ReadFile(ctx, "", "apps/llama"); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile of a directory: %v", err)
	}

	next := rm.humanCommit(t, "edit", map[string]string{"apps/llama/overlay/weights.yaml": "weight: 50\n"})
	if h, _ := rd.Head(ctx); h != seed {
		t.Errorf("Head moved without a fetch: %s", h)
	}
	if h, err := rd.Fetch(ctx); err != nil || h != next {
		t.Fatalf("Fetch = %s, %v; want %s", h, err, next)
	}
	if b, _ := rd.ReadFile(ctx, "", "apps/llama/overlay/weights.yaml"); string(b) != "weight: 50\n" {
		t.Errorf("head content %q", b)
	}
	if b, _ := rd.ReadFile(ctx, seed, "apps/llama/overlay/weights.yaml"); string(b) != "weight: 0\n" {
		t.Errorf("content at seed %q", b)
	}
	if h, err := rd.Fetch(ctx); err != nil || h != next {
		t.Errorf("up-to-date Fetch = %s, %v", h, err)
	}
}
