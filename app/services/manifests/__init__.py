"""The manifest protocol's brokers: one per kind, registered in `registry`."""
