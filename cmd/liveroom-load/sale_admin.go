package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// apiCall does one admin API request with a bearer credential and decodes
// a 2xx JSON answer into out (if not nil). It returns the status.
func apiCall(ctx context.Context, method, u, bearer string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("%s %s: %s: %s", method, u, resp.Status, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w", method, u, err)
		}
	}
	return resp.StatusCode, nil
}

func (c *saleConfig) roomURL() string {
	return c.ws.baseURL + "/api/v1/rooms/" + url.PathEscape(c.ws.room)
}

// ensureRoom creates the room unless it exists.
func (c *saleConfig) ensureRoom(ctx context.Context) error {
	status, err := apiCall(ctx, http.MethodGet, c.roomURL(), c.ws.adminKey, nil, nil)
	if err == nil {
		return nil
	}
	if status != http.StatusNotFound {
		return err
	}
	_, err = apiCall(ctx, http.MethodPost, c.ws.baseURL+"/api/v1/rooms", c.ws.adminKey,
		map[string]any{"id": c.ws.room, "title": "liveroom-load flash sale"}, nil)
	return err
}

// putProduct upserts the sale's product with exactly enough stock for one
// sale (held units of earlier sales come on top when they return).
func (c *saleConfig) putProduct(ctx context.Context) error {
	_, err := apiCall(ctx, http.MethodPut, c.roomURL()+"/products/"+url.PathEscape(c.sku), c.ws.adminKey, map[string]any{
		"title": "Load-test tee", "price_cents": c.price * 2, "currency": "USD", "image_url": "", "stock": c.quantity,
	}, nil)
	return err
}

// orderedUnits pages through the room's orders and counts the orders and
// units of sale saleID. bearer is the admin key or a host token.
func (c *saleConfig) orderedUnits(ctx context.Context, bearer, saleID string) (orders, units int, err error) {
	cursor := ""
	for {
		u := c.roomURL() + "/orders?limit=500"
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		var page struct {
			Orders []struct {
				Items []struct {
					SaleID string `json:"sale_id"`
					Qty    int    `json:"qty"`
				} `json:"items"`
			} `json:"orders"`
			Next string `json:"next"`
		}
		if _, err := apiCall(ctx, http.MethodGet, u, bearer, nil, &page); err != nil {
			return 0, 0, err
		}
		for _, o := range page.Orders {
			mine := false
			for _, it := range o.Items {
				if it.SaleID == saleID {
					units += it.Qty
					mine = true
				}
			}
			if mine {
				orders++
			}
		}
		if page.Next == "" {
			return orders, units, nil
		}
		cursor = page.Next
	}
}
