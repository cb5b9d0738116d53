package cart

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func reopen(t *testing.T, s *LocalStore, dir string) *LocalStore {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := OpenLocal(dir, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })
	return s2
}

func TestLocalRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenLocal(dir, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, s: s, ctx: ctx, room: "r1"}
	f.put(Product{SKU: "tee", Title: "Tee", PriceCents: 2500, Currency: "USD", Stock: 10})
	f.put(Product{SKU: "cap", Title: "Cap", PriceCents: 900, Currency: "USD", Stock: 5})
	s.Pin(ctx, "r1", "cap")
	sale := f.sale(SaleParams{SKU: "tee", PriceCents: 1000, Quantity: 6, PerUserLimit: 2, DurationS: 600}, t0)
	bought, _ := s.Reserve(ctx, "r1", ReserveParams{User: "u1", SaleID: sale.ID, Qty: 2, Key: "add"}, t0)
	if _, err := s.Reserve(ctx, "r1", ReserveParams{User: "u1", SKU: "cap", Qty: 1, Key: "add-cap"}, t0); err != nil {
		t.Fatal(err)
	}
	order, err := s.Checkout(ctx, "r1", "u1", "pay", t0)
	if err != nil {
		t.Fatal(err)
	}
	f.reserve("u2", sale.ID, "", 1, t0) // held: gone after the restart
	f.reserve("u3", "", "cap", 2, t0)   // held at list price: back in stock
	f.reserve("u3", "", "tee", 1, t0)   // likewise
	if p := f.product("cap"); p.Stock != 2 {
		t.Fatalf("cap stock before restart = %d, want 2", p.Stock)
	}

	s = reopen(t, s, dir)
	f.s = s
	got := f.getSale(sale.ID, t0)
	if got.Sold != 2 || got.Held != 0 || got.Remaining != 4 {
		t.Fatalf("sale after restart = %+v; want sold 2, held 0, remaining 4", got)
	}
	for _, tc := range []struct {
		sku   string
		stock int
	}{{"cap", 4}, {"tee", 4}} {
		if p := f.product(tc.sku); p.Stock != tc.stock {
			t.Errorf("%s stock after restart = %d, want %d", tc.sku, p.Stock, tc.stock)
		}
	}
	if p, ok, _ := s.Pinned(ctx, "r1"); !ok || p.SKU != "cap" {
		t.Errorf("pin lost: %+v %v", p, ok)
	}
	page, _ := s.Orders(ctx, "r1", "", 10)
	if len(page.Orders) != 1 || page.Orders[0].ID != order.Order.ID || page.Orders[0].TotalCents != 2*1000+900 {
		t.Fatalf("orders after restart = %+v", page)
	}
	again, err := s.Checkout(ctx, "r1", "u1", "pay", t0)
	if err != nil || !again.Replayed || again.Order.ID != order.Order.ID {
		t.Fatalf("checkout key after restart = %+v, %v", again, err)
	}
	replay, err := s.Reserve(ctx, "r1", ReserveParams{User: "u1", SaleID: sale.ID, Qty: 2, Key: "add"}, t0)
	if err != nil || replay.Reservation.ID != bought.Reservation.ID || replay.Reservation.Status != StatusCheckedOut {
		t.Fatalf("cart.add key of a bought hold after restart = %+v, %v", replay, err)
	}
	_, err = s.Reserve(ctx, "r1", ReserveParams{User: "u1", SaleID: sale.ID, Qty: 1, Key: "add-more"}, t0)
	wantCode(t, "per-user limit after restart", err, CodeLimitReached)
	if c, _ := s.Cart(ctx, "r1", "u2", t0); len(c) != 0 {
		t.Fatalf("holds survived the restart: %+v", c)
	}

	// The sale ends while the node is down: the first sweep after the
	// restart ends and settles it.
	s = reopen(t, s, dir)
	f.s = s
	res, err := s.Sweep(ctx, t0.Add(time.Hour))
	if err != nil || len(res.Ended) != 1 || len(res.Settled) != 1 {
		t.Fatalf("sweep after restart = %+v, %v", res, err)
	}
	if p := f.product("tee"); p.Stock != 10-2 {
		t.Fatalf("tee after settling = %d, want 8", p.Stock)
	}
	s = reopen(t, s, dir)
	f.s = s
	if res, _ := s.Sweep(ctx, t0.Add(2*time.Hour)); len(res.Settled)+len(res.Ended) != 0 {
		t.Fatalf("settled again after another restart: %+v", res)
	}
	if p := f.product("tee"); p.Stock != 8 {
		t.Fatalf("tee after second restart = %d, want 8", p.Stock)
	}
}

// The outbox picks up after a restart, and keeps retrying until the
// receiver accepts.
func TestLocalOutboxAfterRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenLocal(dir, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	rcv, srv := newReceiver(t, 0)
	rcv.down = true
	o := buy(t, s, "r1", "ann", "pay")
	_, stop := startOutbox(t, s, fastWebhooks(srv.URL), nil)
	eventually(t, func() bool { rcv.mu.Lock(); defer rcv.mu.Unlock(); return rcv.attempts[o.ID] >= 3 })
	stop()
	s = reopen(t, s, dir)

	rcv.mu.Lock()
	rcv.down = false
	rcv.mu.Unlock()
	startOutbox(t, s, fastWebhooks(srv.URL), nil)
	rcv.waitAccepted(t, 1)
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if rcv.accepted[o.ID] != o.ID {
		t.Fatalf("accepted = %v", rcv.accepted)
	}
}

// TestLocalCrash kills -9 a process in the middle of checkouts: every order
// it confirmed is there after reopening, and the stock adds up.
func TestLocalCrash(t *testing.T) {
	if os.Getenv("CART_CRASH_DIR") != "" {
		crashChild(os.Getenv("CART_CRASH_DIR"))
		return
	}
	if testing.Short() {
		t.Skip("spawns a process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLocalCrash$", "-test.count=1")
	cmd.Env = append(os.Environ(), "CART_CRASH_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	confirmed := map[string]bool{}
	sc := bufio.NewScanner(out)
	var saleID string
	for sc.Scan() && len(confirmed) < 40 {
		line := sc.Text()
		if id, ok := strings.CutPrefix(line, "sale "); ok {
			saleID = id
		}
		if id, ok := strings.CutPrefix(line, "order "); ok {
			confirmed[id] = true
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if len(confirmed) < 40 {
		t.Fatalf("the child confirmed only %d orders", len(confirmed))
	}

	s, err := OpenLocal(dir, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	found := map[string]bool{}
	var sold int
	for cursor := ""; ; {
		page, err := s.Orders(ctx, "crash", cursor, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Orders {
			found[o.ID] = true
			sold += o.Items[0].Qty
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	for id := range confirmed {
		if !found[id] {
			t.Errorf("confirmed order %s is lost", id)
		}
	}
	sale, err := s.Sale(ctx, "crash", saleID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if sale.Sold != sold || sale.Held != 0 || sale.Remaining != sale.Quantity-sold {
		t.Fatalf("after the crash: sale %+v, orders sold %d", sale, sold)
	}
	ds, _ := s.ClaimDeliveries(ctx, time.Now(), time.Minute, 10000)
	if len(ds) != len(found) {
		t.Fatalf("%d orders but %d queued deliveries", len(found), len(ds))
	}
}

// crashChild checks out orders forever, printing each once it is stored.
func crashChild(dir string) {
	s, err := OpenLocal(dir, testConfig())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx := context.Background()
	s.PutProduct(ctx, "crash", Product{SKU: "tee", Title: "Tee", PriceCents: 100, Currency: "USD", Stock: 1_000_000})
	sale, err := s.StartSale(ctx, "crash", SaleParams{SKU: "tee", PriceCents: 50, Quantity: 1_000_000, DurationS: 3600}, time.Now())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println("sale " + sale.ID)
	for i := 0; ; i++ {
		user := fmt.Sprintf("u%d", i)
		s.Reserve(ctx, "crash", ReserveParams{User: user, SaleID: sale.ID, Qty: 1 + i%3, Key: "a"}, time.Now())
		r, err := s.Checkout(ctx, "crash", user, "p", time.Now())
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println("order " + r.Order.ID)
	}
}
