package media

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// pionLogs routes pion's logs into slog. pion is chatty about conditions a
// server sees all the time (bad packets from the Internet, peers vanishing),
// so its warnings go to Debug and its errors to Warn; trace/debug/info are
// dropped.
type pionLogs struct{ log *slog.Logger }

func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: f.log.With("pion", scope), base: f.log}
}

type pionLogger struct {
	log  *slog.Logger
	base *slog.Logger // without the pion scope, for the SFU's own lines
}

var _ logging.LeveledLogger = pionLogger{}

func (l pionLogger) emit(level slog.Level, msg string) {
	l.log.Log(context.Background(), level, msg)
}

func (pionLogger) Trace(string)          {}
func (pionLogger) Tracef(string, ...any) {}
func (pionLogger) Debug(string)          {}
func (pionLogger) Debugf(string, ...any) {}
func (pionLogger) Info(string)           {}
func (pionLogger) Infof(string, ...any)  {}
func (l pionLogger) Warn(msg string)     { l.emit(slog.LevelDebug, msg) }
func (l pionLogger) Warnf(format string, args ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.emit(slog.LevelDebug, fmt.Sprintf(format, args...))
	}
}
func (l pionLogger) Error(msg string) { l.emit(slog.LevelWarn, msg) }
func (l pionLogger) Errorf(format string, args ...any) {
	l.emit(slog.LevelWarn, fmt.Sprintf(format, args...))
}
