"""The broker: lanes, write path, subscriptions. Socket-free and protobuf-free."""
