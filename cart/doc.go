// Package cart is the commerce core of a live room: the product catalog, the
// pinned product, flash sales, carts of timed reservations, checkout into
// durable orders, and the webhook outbox that delivers orders to the merchant.
//
// Stock follows one rule everywhere: for every sale, sold + held + remaining
// = quantity, and none of them is ever negative. Store keeps that rule in one
// of two backends chosen by cmd: LocalStore (one node: counters in memory,
// durable facts in bbolt) or RedisStore (a cluster: everything in Redis,
// changed only by Lua scripts). Service sits above a Store and adds metrics,
// the expiry sweeper and change notifications for the WebSocket layer; Outbox
// delivers orders at least once.
//
// Lifecycle of a sale (times are the server's):
//
//	scheduled  now < starts_at: its quantity is already taken from the
//	           product's stock; cart.add answers sale_not_active.
//	open       starts_at <= now < ends_at: reservations are taken.
//	ended      now >= ends_at, or stopped (ends_at is then the stop time). No
//	           new reservations; holds taken while it was open may still be
//	           checked out until they expire, or be released.
//	settled    ended and nothing held any more: the unsold remaining returns
//	           to the product's stock, exactly once. The sale keeps its
//	           counters, so sold + held + remaining = quantity still reads true.
package cart
