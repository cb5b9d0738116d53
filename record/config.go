package record

import (
	"errors"
	"time"
)

// Config is the `record:` section.
type Config struct {
	// Default says whether rooms without a `record` field are recorded.
	Default bool `yaml:"default"`
	// Dir holds the recordings (default data_dir/recordings, set by cmd).
	Dir string `yaml:"dir"`
	// Segment is the target segment duration; segments are cut at the
	// first keyframe after it.
	Segment time.Duration `yaml:"segment"`
	// Grace is how long a show's host may stay offline before the show
	// ends; a host who comes back sooner continues the same show.
	Grace time.Duration `yaml:"grace"`
	// RetentionDays removes shows older than this many days (0: keep).
	RetentionDays int `yaml:"retention_days"`
	// MaxBytes caps all recordings: the sweep removes the oldest shows
	// beyond it, and a recording that reaches it stops (0: no cap).
	MaxBytes int64 `yaml:"max_bytes"`
	// MinFreeBytes stops recordings when the disk has less free space.
	MinFreeBytes int64 `yaml:"min_free_bytes"`
	// MaxLogBytes caps one show's product script and chat log.
	MaxLogBytes int64 `yaml:"max_log_bytes"`
	// SweepEvery is how often retention is applied.
	SweepEvery time.Duration `yaml:"sweep_every"`
}

// Defaults of Config.
const (
	DefaultSegment      = 2 * time.Second
	DefaultGrace        = 2 * time.Minute
	DefaultMinFreeBytes = 256 << 20
	DefaultMaxLogBytes  = 16 << 20
	DefaultSweepEvery   = 10 * time.Minute
)

// SetDefaults fills unset fields (Dir stays for cmd to fill).
func (c *Config) SetDefaults() {
	if c.Segment == 0 {
		c.Segment = DefaultSegment
	}
	if c.Grace == 0 {
		c.Grace = DefaultGrace
	}
	if c.MinFreeBytes == 0 {
		c.MinFreeBytes = DefaultMinFreeBytes
	}
	if c.MaxLogBytes == 0 {
		c.MaxLogBytes = DefaultMaxLogBytes
	}
	if c.SweepEvery == 0 {
		c.SweepEvery = DefaultSweepEvery
	}
}

// Validate checks the section.
func (c Config) Validate() error {
	switch {
	case c.Segment < 500*time.Millisecond || c.Segment > 30*time.Second:
		return errors.New("record.segment: must be between 500ms and 30s")
	case c.Grace < 0:
		return errors.New("record.grace: must not be negative")
	case c.RetentionDays < 0:
		return errors.New("record.retention_days: must not be negative")
	case c.MaxBytes < 0 || c.MinFreeBytes < 0 || c.MaxLogBytes < 0:
		return errors.New("record: byte limits must not be negative")
	case c.SweepEvery <= 0:
		return errors.New("record.sweep_every: must be positive")
	}
	return nil
}

// checkEvery is how often a show looks at its room and the disk.
func (c Config) checkEvery() time.Duration { return time.Second }
