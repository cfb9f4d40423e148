"""The committed log: its interface and implementations."""
