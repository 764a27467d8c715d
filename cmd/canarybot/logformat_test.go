package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// --log-format json writes one JSON object a line, with the credentials
// of URLs hidden as in text: in the message, strings, errors and groups.
func TestLoggerJSONHidesCredentials(t *testing.T) {
	var stderr bytes.Buffer
	g := &globals{logLevel: "info", logFormat: "json", stderr: &stderr}
	log, err := g.logger()
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("not at info")
	log.Info("cloning https://SECRET@h/x.git", "repo", "https://u:SECRET@h/x.git",
		"err", errors.New(`Get "https://h/x?token=SECRET": EOF`), slog.Group("g", "url", "https://SECRET@h"),
		"took", time.Second, "n", 3)
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 1 || strings.Contains(stderr.String(), "SECRET") {
		t.Fatalf("want one line without the secret:\n%s", stderr.String())
	}
	var rec struct {
		Level, Msg, Repo, Err string
		G                     struct{ URL string }
		Took                  float64
		N                     int
	}
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, lines[0])
	}
	if rec.Level != "INFO" || rec.Msg != "cloning https://xxxxx@h/x.git" || rec.Repo != "https://xxxxx:xxxxx@h/x.git" ||
		rec.Err != `Get "https://h/x?token=xxxxx": EOF` || rec.G.URL != "https://xxxxx@h" ||
		rec.Took != float64(time.Second) || rec.N != 3 {
		t.Errorf("decoded %+v from\n%s", rec, lines[0])
	}
}

// An unknown --log-format is refused before the command does anything,
// naming the two formats.
func TestLogFormatRefusesUnknown(t *testing.T) {
	_, _, err := run(t, "--log-format", "yaml", "validate", "/nonexistent/plan.yaml")
	if err == nil || err.Error() != `--log-format "yaml": want json or text` {
		t.Fatalf("err = %v", err)
	}
	help, _, err := run(t, "version", "--help")
	if err != nil || !strings.Contains(help, "--log-format string") {
		t.Errorf("--help (%v) lacks --log-format:\n%s", err, help)
	}
}
