"""Authentication and permission checks of gRPC calls, as decorators of servicer methods.

grpc.aio shows a call's TLS peer (its verified client certificate) only to
the handler, through its context, so the check wraps each servicer method
rather than intercepting calls: :meth:`Guard.authenticated` finds the
caller (:class:`..security.access.Principal`) and passes it to the method
as a third argument; :meth:`Guard.admin` also requires the ``admin``
permission, so an administrative RPC only declares it::

    self.transfer = handles_errors("TransferLeadership", metrics)(
        guard.admin(self._transfer))

Both raise :class:`..errors.EventStreamError` (UNAUTHENTICATED,
PERMISSION_DENIED), which :func:`.status.handles_errors` outside them turns
into the status. Health and reflection are not wrapped: they reveal no data.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar

import grpc

from ..errors import EventStreamError
from ..security.access import ANONYMOUS, AccessControl, Principal

T = TypeVar("T")
Context = grpc.aio.ServicerContext[Any, Any]
Guarded = Callable[[Any, Context, Principal], Awaitable[T]]
Handler = Callable[[Any, Context], Awaitable[T]]

_COMMON_NAME = "x509_common_name"
_ALT_NAMES = "x509_subject_alternative_name"


def certificate_names(context: Context) -> list[str]:
    """The verified client certificate's subject CN, then its SANs (empty without one)."""
    auth = context.auth_context()
    names = [value.decode("utf-8", "replace") for key in (_COMMON_NAME, _ALT_NAMES)
             for value in auth.get(key, ())]
    return names


class Guard:
    """Finds the caller of each call and checks the permissions a method declares.

    Args:
        access: the node's access control.
    """

    def __init__(self, access: AccessControl) -> None:
        self.access = access

    def identify(self, context: Context) -> Principal:
        """The caller of a call.

        Raises:
            EventStreamError: UNAUTHENTICATED (counted).
        """
        access = self.access
        if not access.enabled:
            return ANONYMOUS
        authorization = None
        for key, value in context.invocation_metadata() or ():
            if key == "authorization" and isinstance(value, str):
                authorization = value
                break
        return access.authenticate("grpc", authorization, certificate_names(context))

    def named(self, name: str) -> Principal:
        """The identity ``name`` another member authenticated (a relayed caller), with its rules here."""
        return self.access.principal_named(name)

    def authenticated(self, method: Guarded[T]) -> Handler[T]:
        """Wrap ``method(request, context, principal)`` as a grpc handler ``(request, context)``."""
        @functools.wraps(method)
        async def wrapper(request: Any, context: Context) -> T:
            return await method(request, context, self.identify(context))
        return wrapper

    def admin(self, method: Guarded[T]) -> Handler[T]:
        """Like :meth:`authenticated`, for a method only identities with ``admin`` may call."""
        name = method.__name__.lstrip("_")

        @functools.wraps(method)
        async def wrapper(request: Any, context: Context) -> T:
            principal = self.identify(context)
            rules = principal.rules
            if not rules.admin:
                self.access.denied(rules, "admin")
                raise EventStreamError("PERMISSION_DENIED",
                                       f"{name}: identity {principal.name!r} lacks the admin "
                                       "permission")
            return await method(request, context, principal)
        return wrapper

    def check_read(self, principal: Principal, kind: str, patterns: Sequence[str],
                   field: str) -> None:
        """Refuse a subscriber (``subscribe``) or group member (``consume``) a pattern it may not read.

        A pattern must be read whole: covered by an allow pattern, clear of every deny pattern.

        Raises:
            EventStreamError: PERMISSION_DENIED naming the pattern.
        """
        rules = principal.rules
        rule = rules.subscribe if kind == "subscribe" else rules.consume
        if rule.everything:
            return
        for index, pattern in enumerate(patterns):
            refusal = rule.refusal(pattern)
            if refusal is not None:
                self.access.denied(rules, kind)
                raise EventStreamError("PERMISSION_DENIED", f"{field}[{index}]: {refusal}",
                                       field=f"{field}[{index}]")

    @contextlib.contextmanager
    def subscription_slot(self, principal: Principal) -> Iterator[None]:
        """Hold one of the caller's ``max_subscriptions`` for the ``with`` block.

        Raises:
            EventStreamError: QUOTA_EXCEEDED when they are all in use.
        """
        quota = principal.quota
        if quota is None:
            yield
            return
        exceeded = quota.open_subscription()
        if exceeded is not None:
            raise self.access.exceeded(principal, exceeded)
        try:
            yield
        finally:
            quota.close_subscription()


__all__ = ["Guard", "certificate_names"]
