package room_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"liveroom/room"
	"liveroom/room/roomtest"
)

// echoScript answers its caller's own argument, or fails when asked to:
// each caller of a shared pipeline must get its own reply or error.
var echoScript = redis.NewScript(`
if ARGV[1] == "fail" then return redis.error_reply("ECHO refused") end
redis.call("INCR", KEYS[1])
return KEYS[1] .. "=" .. ARGV[1]`)

func pipelineClient(t *testing.T, srv *roomtest.RedisServer) *redis.Client {
	t.Helper()
	// Production's timeouts are seconds (room/redis_config.go); a frozen
	// server here must not time the batch out while the test looks at it.
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, ReadTimeout: 30 * time.Second, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// Many concurrent callers through one pipeline: each gets its own answer
// (or its own error), the script runs exactly once per call, and after
// SCRIPT FLUSH the calls load the script again (NOSCRIPT -> EVAL).
func TestRedisPipelineScripts(t *testing.T) {
	srv := roomtest.StartRedis(t)
	rdb := pipelineClient(t, srv)
	p := room.NewRedisPipeline(rdb)
	ctx := context.Background()
	prefix := roomtest.Prefix()
	for round := range 3 {
		if round == 1 {
			if err := rdb.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		errs := make(chan error, 400)
		for i := range 400 {
			wg.Go(func() {
				key := fmt.Sprintf("%s{k%d}", prefix, i%7)
				arg := fmt.Sprintf("c%d-%d", round, i)
				if i%50 == 3 {
					arg = "fail"
				}
				got, err := echoScript.Run(ctx, p, []string{key}, arg).Text()
				switch {
				case arg == "fail" && (err == nil || !strings.Contains(err.Error(), "ECHO refused")):
					errs <- fmt.Errorf("call %d: got %q, %v; want ECHO refused", i, got, err)
				case arg != "fail" && (err != nil || got != key+"="+arg):
					errs <- fmt.Errorf("call %d: got %q, %v; want %q", i, got, err, key+"="+arg)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
	// 3 rounds × 392 successful calls, each INCR once: no call ran twice
	// or was lost.
	total := 0
	for k := range 7 {
		n, err := rdb.Get(ctx, fmt.Sprintf("%s{k%d}", prefix, k)).Int()
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if total != 3*392 {
		t.Fatalf("scripts ran %d times, want %d", total, 3*392)
	}
}

// cappedPipeline starts a redis-server and a pipeline over it with a cap
// of capN, and makes one call: key counts 1 after it. Redis is resumed
// when the test ends, whatever happened.
func cappedPipeline(t *testing.T, capN int) (*roomtest.RedisServer, *redis.Client, *room.RedisPipeline, string) {
	t.Helper()
	srv := roomtest.StartRedis(t)
	t.Cleanup(srv.Resume)
	rdb := pipelineClient(t, srv)
	p := room.NewRedisPipelineCap(rdb, capN)
	ctx := context.Background()
	key := roomtest.Prefix() + "n"
	if err := p.Do(ctx, redis.NewIntCmd(ctx, "incr", key)); err != nil {
		t.Fatal(err)
	}
	return srv, rdb, p, key
}

// While Redis does not answer, a caller whose context ends gets the
// context's error at once; one past the cap is refused at once; the
// accepted ones complete when Redis answers again.
func TestRedisPipelineCapAndContext(t *testing.T) {
	const capN = 20
	srv, rdb, p, key := cappedPipeline(t, capN)
	ctx := context.Background()

	srv.Pause()
	var wg sync.WaitGroup
	var refused, ok atomic.Int64
	others := make(chan error, 2*capN)
	for range capN + 10 {
		wg.Go(func() {
			err := p.Do(ctx, redis.NewIntCmd(ctx, "incr", key))
			switch {
			case errors.Is(err, room.ErrRedisPipelineFull):
				refused.Add(1)
			case err == nil:
				ok.Add(1)
			default:
				others <- err
			}
		})
	}
	for deadline := time.Now().Add(20 * time.Second); refused.Load() < 10 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if got := refused.Load(); got != 10 {
		t.Fatalf("refused %d of %d calls with %d allowed while redis was frozen, want 10", got, capN+10, capN)
	}

	// Still full: one more is refused at once, whatever its context.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := p.Do(short, redis.NewIntCmd(short, "incr", key)); !errors.Is(err, room.ErrRedisPipelineFull) {
		t.Fatalf("call over the cap: %v, want ErrRedisPipelineFull", err)
	}

	srv.Resume()
	wg.Wait()
	close(others)
	for err := range others {
		t.Errorf("accepted call failed: %v", err)
	}
	if ok.Load() != capN {
		t.Fatalf("%d accepted calls succeeded, want %d", ok.Load(), capN)
	}
	if n, err := rdb.Get(ctx, key).Int(); err != nil || n != 1+capN {
		t.Fatalf("counter = %d, %v; want %d (each accepted call once, no refused one)", n, err, 1+capN)
	}

	// Redis frozen again: a caller whose context ends is not left waiting.
	srv.Pause()
	done := make(chan error, 1)
	cctx, ccancel := context.WithCancel(ctx)
	go func() { done <- p.Do(cctx, redis.NewIntCmd(cctx, "incr", key)) }()
	time.Sleep(50 * time.Millisecond)
	ccancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled call: %v, want context.Canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a cancelled call still waits for a frozen redis")
	}
	if err := p.Do(cctx, redis.NewIntCmd(cctx, "incr", key)); !errors.Is(err, context.Canceled) {
		t.Fatalf("call with an ended context: %v, want context.Canceled", err)
	}
	srv.Resume()
	if err := p.Do(ctx, redis.NewIntCmd(ctx, "incr", key)); err != nil {
		t.Fatalf("after resume: %v", err)
	}
}

// Redis going away mid-storm: every caller returns, with an error naming
// the connection, and none hangs; the pipeline works again once Redis is
// back.
func TestRedisPipelineRedisGone(t *testing.T) {
	srv := roomtest.StartRedis(t)
	rdb, err := room.RedisConfig{URL: srv.URL()}.Client() // production's options
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	p := room.NewRedisPipeline(rdb)
	ctx := context.Background()
	key := roomtest.Prefix() + "{r}"
	stop := make(chan struct{})
	var calls, failed atomic.Int64
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := echoScript.Run(ctx, p, []string{key}, "x").Result()
				calls.Add(1)
				if err != nil {
					failed.Add(1)
				}
			}
		})
	}
	waitFor := func(what string, cond func() bool) {
		for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				close(stop)
				t.Fatalf("no %s after 60s", what)
			}
		}
	}
	waitFor("2000 calls", func() bool { return calls.Load() >= 2000 })
	srv.Stop()
	waitFor("50 failed calls", func() bool { return failed.Load() >= 50 })
	close(stop)
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(60 * time.Second):
		t.Fatal("callers still wait 60s after redis went away")
	}
	_, err = echoScript.Run(ctx, p, []string{key}, "x").Result()
	if err == nil || !strings.Contains(err.Error(), "connect") && !strings.Contains(err.Error(), "EOF") {
		t.Fatalf("call with redis gone: %v, want a connection error", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	var got string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got, err = echoScript.Run(ctx, p, []string{key}, "back").Text(); err == nil {
			break
		}
	}
	if err != nil || got != key+"=back" {
		t.Fatalf("after redis came back: %q, %v", got, err)
	}
}

// A command whose reply is late is never sent again: the node's client
// (production's options, room.RedisConfig.Client) returns the error and
// Redis runs the command once. go-redis's retries would re-send it, and
// the pipelined batch with it, to a Redis that already has it: a script
// that is not idempotent (a release, a sweep, a bus publish) would then
// run twice and answer its caller as if someone else had run it.
func TestRedisClientNeverRerunsACommand(t *testing.T) {
	srv := roomtest.StartRedis(t)
	rdb, err := room.RedisConfig{URL: srv.URL()}.Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	p := room.NewRedisPipeline(rdb)
	ctx := context.Background()
	piped, plain := roomtest.Prefix()+"{piped}", roomtest.Prefix()+"{plain}"
	// Idle connections in the pool, made while Redis answers: a retry
	// would take one and write at once, where a dial to a stopped Redis
	// fails before anything is written. (Each BLPOP holds its own.)
	var warm sync.WaitGroup
	for i := range 6 {
		warm.Go(func() { rdb.BLPop(ctx, time.Second, fmt.Sprintf("%s{warm%d}", roomtest.Prefix(), i)) })
	}
	warm.Wait()
	if n := rdb.PoolStats().IdleConns; n < 4 {
		t.Fatalf("%d idle connections after the warm-up; want at least 4", n)
	}
	if err := p.Do(ctx, redis.NewStatusCmd(ctx, "ping")); err != nil {
		t.Fatal(err)
	}

	srv.Pause() // Redis takes the writes (the kernel buffers them) and answers nothing
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	var wg sync.WaitGroup
	var pipedErr, plainErr error
	wg.Go(func() { pipedErr = p.Do(ctx, redis.NewIntCmd(ctx, "incr", piped)) })
	wg.Go(func() { plainErr = rdb.Incr(ctx, plain).Err() })
	wg.Wait()
	srv.Resume()
	resumed = true
	if pipedErr == nil || plainErr == nil {
		t.Fatalf("answered while Redis was stopped: pipelined %v, plain %v", pipedErr, plainErr)
	}
	t.Logf("while stopped: pipelined %v; plain %v", pipedErr, plainErr)

	// The writes run once Redis resumes; watch a while for a second run.
	check := srv.Client(t)
	most := map[string]int64{}
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		for _, k := range []string{piped, plain} {
			n, err := check.Get(ctx, k).Int64()
			if err != nil && !errors.Is(err, redis.Nil) {
				t.Fatal(err)
			}
			most[k] = max(most[k], n)
		}
	}
	if most[piped] != 1 || most[plain] != 1 {
		t.Fatalf("INCR ran %d times pipelined and %d times plain; want once each", most[piped], most[plain])
	}
}

// TestRedisPipelineCapCountsAbandoned: a caller that stops waiting leaves
// its command on the wire, so the command keeps its place under the cap
// until Redis answers it. Callers that time out against a frozen Redis
// cannot make room for more: the next call is refused, and the cap frees
// once Redis has answered the abandoned commands (each of which ran once).
func TestRedisPipelineCapCountsAbandoned(t *testing.T) {
	const capN = 8
	srv, rdb, p, key := cappedPipeline(t, capN)
	ctx := context.Background()

	srv.Pause()
	var wg sync.WaitGroup
	for range capN {
		wg.Go(func() {
			short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			if err := p.Do(short, redis.NewIntCmd(short, "incr", key)); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("call to a frozen redis: %v, want its deadline", err)
			}
		})
	}
	wg.Wait() // every caller has left; their commands have not been answered
	if err := p.Do(ctx, redis.NewIntCmd(ctx, "incr", key)); !errors.Is(err, room.ErrRedisPipelineFull) {
		t.Fatalf("call while %d abandoned commands are unanswered: %v, want ErrRedisPipelineFull", capN, err)
	}

	srv.Resume()
	var err error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if err = p.Do(ctx, redis.NewIntCmd(ctx, "incr", key)); !errors.Is(err, room.ErrRedisPipelineFull) {
			break
		}
	}
	if err != nil {
		t.Fatalf("after redis answered the abandoned commands: %v", err)
	}
	if n, err := rdb.Get(ctx, key).Int(); err != nil || n != 1+capN+1 {
		t.Fatalf("counter = %d, %v; want %d (the first call, each abandoned one once, the last)", n, err, 1+capN+1)
	}
}
