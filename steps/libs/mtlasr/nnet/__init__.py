"""Neural acoustic models: LSTMP trunk, chunked data, training loop."""
