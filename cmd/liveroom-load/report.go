package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// parseChecked parses a workload's flags and checks the config they set.
func parseChecked(fs *flag.FlagSet, args []string, check func() error) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	return check()
}

// report prints a checking workload's result, res as JSON or else text's
// table, and turns the failed checks (problems) into the command's error,
// so the exit status says whether the server kept its guarantees.
func report(out io.Writer, asJSON bool, res any, text func(io.Writer), problems []string) error {
	if asJSON {
		if err := printJSON(out, res); err != nil {
			return err
		}
	} else {
		text(out)
	}
	if len(problems) > 0 {
		return fmt.Errorf("check failed: %s", strings.Join(problems, "; "))
	}
	return nil
}
