package room

// NewRedisPipelineCap is NewRedisPipeline with a cap of maxQueued commands,
// for the test of the refusal.
var NewRedisPipelineCap = newRedisPipeline
