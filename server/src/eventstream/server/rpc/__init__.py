"""The gRPC servicers of the public API (the only users of eventstream.v1 in the server)."""
