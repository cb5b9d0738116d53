package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestUsage(t *testing.T) {
	cases := []struct {
		args     []string
		code     int
		toStdout bool
	}{
		{[]string{"--help"}, 0, true},
		{[]string{"-h"}, 0, true},
		{[]string{"help"}, 0, true},
		{[]string{"chat", "-h"}, 0, false},
		{nil, 2, false},
		{[]string{"nonsense"}, 2, false},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(context.Background(), tc.args, &out, &errOut)
			if code != tc.code {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tc.code, errOut.String())
			}
			if tc.args != nil && workloads[tc.args[0]] != nil {
				return // a workload's own flags, printed by its flag set
			}
			text := errOut.String()
			if tc.toStdout {
				text = out.String()
			}
			for name := range workloads {
				if !strings.Contains(text, "\n  "+name+" ") {
					t.Errorf("usage does not list %s:\n%s", name, text)
				}
				if workloadHelp[name] == "" {
					t.Errorf("workload %s has no help line", name)
				}
			}
		})
	}
}
