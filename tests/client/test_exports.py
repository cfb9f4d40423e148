"""The public names of eventstream.client, pinned: a change here is an API change."""

from __future__ import annotations

import eventstream.client as client

EXPORTS = {
    "NO_RETRY", "Assignment", "AsyncClient", "AsyncConsumer", "AsyncPublisher",
    "AsyncSubscription", "Client", "ClusterStatus", "ConsumedEvent", "Consumer",
    "DeadlineExceededError", "Durability", "Event", "EventStreamError", "GroupStart",
    "InternalError",
    "InvalidArgumentError", "Member", "MembershipResult", "OutOfRangeError", "Priority",
    "Publisher", "PublishAck",
    "PublishResult", "ReceivedEvent", "ResourceExhaustedError", "RetryPolicy", "StartPosition",
    "Subscription", "TLSConfig", "UnavailableError", "UnauthenticatedError",
    "PermissionDeniedError",
}


def test_all_is_the_pinned_list_and_every_name_resolves():
    assert set(client.__all__) == EXPORTS
    assert len(client.__all__) == len(EXPORTS), "a name is listed twice"
    for name in client.__all__:
        assert getattr(client, name) is not None


def test_every_public_name_is_documented():
    for name in client.__all__:
        value = getattr(client, name)
        if isinstance(value, type):
            assert value.__doc__ and value.__module__.startswith("eventstream.client._"), name


def test_the_package_ships_its_type_marker():
    from importlib import resources

    assert resources.files("eventstream.client").joinpath("py.typed").is_file()
