package room

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/redis/go-redis/v9"
)

// RedisPipeline carries a node's hot-path Redis commands (the cart's
// scripts, the bus's publishes) through go-redis's autopipeliner in its
// full-duplex mode: one held connection with a writer and a reader
// goroutine. The writer sends commands as they come, packing whatever is
// queued into one write; the reader reads the replies in order and hands
// each to its caller. So a storm pays one write and one read for many
// commands, as with rueidis, and, unlike a batch-per-round-trip pipeline,
// a command does not wait for the previous batch's replies before it goes
// out. Each caller gets its own reply or error; each script is still
// atomic (a pipeline is not a transaction, and nothing is merged); the
// stream is ordered, so a caller's commands keep their order.
//
// It is a redis.Scripter, so redis.Script.Run works through it: EVALSHA, and
// EVAL (which loads the script) when Redis answers NOSCRIPT.
//
// A caller whose ctx ends stops waiting at once with ctx's error; a command
// already sent may still run (as with a plain client whose deadline passes
// mid-call). Redis going away fails every command sent and not answered
// with the connection's error; none is sent again (the node's client has
// no retries: see RedisConfig.Options). At most RedisPipelineMaxQueued
// commands may wait or be in flight (counted until Redis answers, even
// for a caller that stopped waiting); one more is refused at once with
// ErrRedisPipelineFull.
//
// The autopipeliner belongs to the client: every RedisPipeline over one
// client shares it and its cap (so the cart and the bus fill the same
// writes) and it stops when the client is closed.
type RedisPipeline struct {
	rdb redis.UniversalClient
	ap  *redis.AutoPipeliner // nil: each command goes on its own (a client without one)
	cap *pipelineCap         // the ap's; nil with ap
}

// pipelineCap counts an autopipeliner's commands from submission until
// Redis answers them (or the connection fails them). The full-duplex
// stream does not refuse on its own (a full window blocks the submitter),
// so the refusal is ours.
type pipelineCap struct {
	max int64
	n   atomic.Int64
}

// take reserves a place, or reports that all max are taken.
func (c *pipelineCap) take() bool {
	if c.n.Add(1) > c.max {
		c.n.Add(-1)
		return false
	}
	return true
}

func (c *pipelineCap) done() { c.n.Add(-1) }

// pipelineCaps holds the cap of every autopipeliner a RedisPipeline was
// made over (a client's is shared, and so is its cap). It holds them
// weakly: an entry goes when its autopipeliner is collected.
var pipelineCaps struct {
	sync.Mutex
	m map[weak.Pointer[redis.AutoPipeliner]]*pipelineCap
}

func capFor(ap *redis.AutoPipeliner, max int) *pipelineCap {
	pipelineCaps.Lock()
	defer pipelineCaps.Unlock()
	if pipelineCaps.m == nil {
		pipelineCaps.m = map[weak.Pointer[redis.AutoPipeliner]]*pipelineCap{}
	}
	key := weak.Make(ap)
	c := pipelineCaps.m[key]
	if c == nil {
		c = &pipelineCap{max: int64(max)}
		pipelineCaps.m[key] = c
		runtime.AddCleanup(ap, func(k weak.Pointer[redis.AutoPipeliner]) {
			pipelineCaps.Lock()
			delete(pipelineCaps.m, k)
			pipelineCaps.Unlock()
		}, key)
	}
	return c
}

// RedisPipelineMaxQueued caps the commands a node holds queued or in flight
// on its pipeline: 10,000 is a flash sale's burst several times over, and
// bounded memory when Redis is slower than the buyers.
const RedisPipelineMaxQueued = 10_000

// ErrRedisPipelineFull is the refusal when the pipeline's cap of commands
// are already waiting; the command was not sent.
var ErrRedisPipelineFull = errors.New("redis pipeline: too many commands waiting for redis")

var _ redis.Scripter = (*RedisPipeline)(nil)

// NewRedisPipeline returns the pipeline over rdb. A client that has no
// autopipeliner (a Ring, or a closed client) gets one that sends each
// command on its own.
func NewRedisPipeline(rdb redis.UniversalClient) *RedisPipeline {
	return newRedisPipeline(rdb, RedisPipelineMaxQueued)
}

func newRedisPipeline(rdb redis.UniversalClient, maxQueued int) *RedisPipeline {
	// The async face: Submit + WaitContext give the ctx-aware wait. Full
	// duplex, ordered (one stream): measured on loopback, a flash sale's
	// closed loop of 50 buyers ran 0.51–0.59× redis-benchmark's rate with
	// it against 0.44–0.47× with one batch per round trip (docs/benchmarks.md).
	// The window is the cap, as a backstop: the cap refuses first. With
	// more than 64 commands in flight (a storm, not a closed loop of 50
	// buyers) the writer waits up to 100 µs to pack more into a write:
	// a 4,000-buyer storm then answers sooner, at fewer writes per
	// reservation (docs/benchmarks.md, session 29).
	ap, err := rdb.AsyncAutoPipelineWithOptions(&redis.AutoPipelineOptions{
		MaxBatchSize: 300, MaxConcurrentBatches: 1, MaxQueuedCommands: maxQueued,
		FullDuplex: true, FullDuplexWindow: maxQueued, MaxFlushDelay: 100 * time.Microsecond,
	})
	if err != nil {
		return &RedisPipeline{rdb: rdb}
	}
	return &RedisPipeline{rdb: rdb, ap: ap, cap: capFor(ap, maxQueued)}
}

// Do sends cmd and waits for its reply or for ctx.
func (p *RedisPipeline) Do(ctx context.Context, cmd redis.Cmder) error {
	if err := ctx.Err(); err != nil {
		return err // nobody waits for it: do not send it
	}
	if p.ap == nil {
		_ = p.rdb.Process(ctx, cmd)
		return cmd.Err()
	}
	if !p.cap.take() {
		return ErrRedisPipelineFull
	}
	f := p.ap.Submit(ctx, cmd)
	err := f.WaitContext(ctx)
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		// The caller leaves; the command keeps its place until it is
		// answered (or failed), so the cap counts what Redis still owes.
		go func() {
			_ = f.Wait()
			p.cap.done()
		}()
	} else {
		p.cap.done()
	}
	if errors.Is(err, redis.ErrAutoPipelineQueueFull) {
		return ErrRedisPipelineFull
	}
	return err
}

// Publish is PUBLISH channel msg.
func (p *RedisPipeline) Publish(ctx context.Context, channel string, msg any) error {
	return p.Do(ctx, redis.NewIntCmd(ctx, "publish", channel, msg))
}

func (p *RedisPipeline) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return p.eval(ctx, "eval", script, keys, args)
}

func (p *RedisPipeline) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return p.eval(ctx, "evalsha", sha1, keys, args)
}

func (p *RedisPipeline) EvalRO(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return p.eval(ctx, "eval_ro", script, keys, args)
}

func (p *RedisPipeline) EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return p.eval(ctx, "evalsha_ro", sha1, keys, args)
}

func (p *RedisPipeline) ScriptExists(ctx context.Context, hashes ...string) *redis.BoolSliceCmd {
	return p.rdb.ScriptExists(ctx, hashes...)
}

func (p *RedisPipeline) ScriptLoad(ctx context.Context, script string) *redis.StringCmd {
	return p.rdb.ScriptLoad(ctx, script)
}

// eval builds the command as go-redis's own Eval family does (keys at
// position 3, so a cluster client routes it by its first key).
func (p *RedisPipeline) eval(ctx context.Context, name, payload string, keys []string, args []any) *redis.Cmd {
	a := make([]any, 0, 3+len(keys)+len(args))
	a = append(a, name, payload, len(keys))
	for _, k := range keys {
		a = append(a, k)
	}
	for _, x := range args {
		switch v := x.(type) { // flattened as go-redis does
		case []string:
			for _, s := range v {
				a = append(a, s)
			}
		case []any:
			a = append(a, v...)
		default:
			a = append(a, x)
		}
	}
	cmd := redis.NewCmd(ctx, a...)
	if len(keys) > 0 {
		cmd.SetFirstKeyPos(3)
	}
	if err := p.Do(ctx, cmd); err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		// The batch may still fill cmd in later: the caller gets a
		// command of its own that carries ctx's error.
		mine := redis.NewCmd(ctx, a...)
		mine.SetErr(err)
		return mine
	} else if errors.Is(err, ErrRedisPipelineFull) {
		cmd.SetErr(err)
	}
	return cmd
}
