"""StatefulSet naming: pod names, ordinals and the peers' DNS names.

Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from eventstream.server.config.model import ClusterConfig

# "<statefulset>-<ordinal>": the pod name, and the first label of its host name.
_POD_NAME = re.compile(r"(?P<statefulset>[a-z0-9]([-a-z0-9]*[a-z0-9])?)-(?P<ordinal>0|[1-9][0-9]*)")


@dataclass(frozen=True)
class PodName:
    """A StatefulSet pod's name taken apart."""

    statefulset: str
    """The StatefulSet's name (``eventstream``)."""
    ordinal: int
    """The pod's ordinal (``2`` in ``eventstream-2``)."""

    def __str__(self) -> str:
        return f"{self.statefulset}-{self.ordinal}"


def parse_pod_name(name: str) -> PodName | None:
    """The StatefulSet and ordinal of a pod name such as ``eventstream-2``.

    None when ``name`` is not ``<statefulset>-<ordinal>``.
    """
    match = _POD_NAME.fullmatch(name)
    if match is None:
        return None
    return PodName(match["statefulset"], int(match["ordinal"]))


def pod_host(pod: str, cluster: ClusterConfig) -> str:
    """The DNS name the headless service gives a pod.

    ``<pod>.<service>.<namespace>.svc[.<cluster_domain>]``.
    """
    domain = f".{cluster.cluster_domain}" if cluster.cluster_domain else ""
    return f"{pod}.{cluster.service}.{cluster.namespace}.svc{domain}"


def member_names(statefulset: str, replicas: int) -> list[str]:
    """The pod names of ordinals 0 to ``replicas - 1``."""
    return [f"{statefulset}-{ordinal}" for ordinal in range(replicas)]


def voter_count(cluster: ClusterConfig) -> int:
    """How many ordinals (from 0) are initial voters: ``min(voters, replicas)``."""
    return min(cluster.voters, cluster.replicas)


def is_voter_ordinal(pod: PodName, cluster: ClusterConfig) -> bool:
    """Whether ``pod`` is one of the initial voters (its ordinal below :func:`voter_count`)."""
    return pod.ordinal < voter_count(cluster)


def majority(replicas: int) -> int:
    """Members that make a quorum of ``replicas``."""
    return replicas // 2 + 1
