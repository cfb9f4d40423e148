"""Test harnesses shipped with the server: the Raft interaction runner and simulation.

Never imported by production code.
"""
