package cart

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
)

// A failed delivery's error is logged and kept on the parked delivery, so
// it must not carry a credential from the receiver's URL or its redirect.
func TestDeliveryErrorHidesURLQuery(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/hook?token=s3cret"
	ln.Close() // nothing listens: the attempt fails on the network

	redirect := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://example.invalid/elsewhere?token=s3cret", http.StatusFound)
	})}
	rl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go redirect.Serve(rl)
	t.Cleanup(func() { redirect.Close() })

	for name, u := range map[string]string{"network": dead, "redirect": "http://" + rl.Addr().String() + "/hook?token=s3cret"} {
		t.Run(name, func(t *testing.T) {
			ob, err := NewOutbox(nil, fastWebhooks(u), OutboxOptions{Log: quietLog})
			if err != nil {
				t.Fatal(err)
			}
			err = ob.post(context.Background(), Delivery{Room: "r", OrderID: "o1", Attempt: 1, Order: []byte(`{}`)})
			if err == nil {
				t.Fatal("the attempt succeeded")
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("the error quotes the URL's query: %v", err)
			}
		})
	}
}
