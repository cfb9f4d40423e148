"""free_port never hands out one port twice in a process (a cluster takes a dozen at once)."""

from __future__ import annotations

from tests.support.server import EPHEMERAL_LOW, free_port


def test_ports_handed_out_in_one_process_are_all_different() -> None:
    ports = [free_port() for _ in range(2000)]
    assert len(set(ports)) == len(ports)
    assert all(10000 <= port < EPHEMERAL_LOW for port in ports)
