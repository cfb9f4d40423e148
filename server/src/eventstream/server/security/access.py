"""Who a client is and what it may do now: authentication, the rules in force, quotas.

:class:`AccessControl` is the one object the listeners ask. It holds the
current :class:`Policy` (identities, certificate names, tokens), replaced
whole when the rules are reloaded, so every check sees one consistent set;
and one :class:`.quotas.QuotaState` per identity, kept across reloads.
Each refusal is counted here: failed authentications by transport and
reason, denials by identity and access, exceeded quotas by identity and
quota; identity labels are configured names only (others are ``other``),
so the series stay bounded.

While ``auth.enabled`` is false every client is :data:`ANONYMOUS`, allowed
everything without quotas, and nothing is looked at per call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from ..config.model import AuthConfig
from ..errors import EventStreamError
from ..native import Accepted, NativeWire
from ..observability.metrics import Metrics
from .quotas import Exceeded, QuotaState
from .rules import OTHER, IdentityRules, open_rules, rules_of, unknown_rules
from .tokens import Tokens

ANONYMOUS_NAME = "anonymous"
_OPEN = open_rules(ANONYMOUS_NAME)


class Policy:
    """One consistent set of rules: identities, certificate names and tokens.

    Args:
        auth: the ``auth`` section.
        tokens: the tokens file's tokens.
    """

    def __init__(self, auth: AuthConfig, tokens: Tokens) -> None:
        self.auth = auth
        self.tokens = tokens
        self.rules = {identity.name: rules_of(identity, auth.default_quotas)
                      for identity in auth.identities}
        self.certificate_names: dict[str, str] = {}
        for identity in auth.identities:
            for name in identity.certificate_names or (identity.name,):
                self.certificate_names.setdefault(name, identity.name)

    def rules_for(self, name: str) -> IdentityRules:
        """The rules of identity ``name`` (none at all when it is not configured)."""
        return self.rules.get(name) or unknown_rules(name)

    def identity_of_certificate(self, names: Sequence[str]) -> str:
        """The identity a certificate with these names (CN first, then SANs) is."""
        for name in names:
            identity = self.certificate_names.get(name)
            if identity is not None:
                return identity
        return names[0]


class Principal:
    """An authenticated caller: its identity's name, and its rules as they are now.

    Args:
        name: the identity's name.
        access: where its rules and quotas are.
    """

    __slots__ = ("_access", "_policy", "_rules", "name")

    def __init__(self, name: str, access: AccessControl | None) -> None:
        self.name = name
        self._access = access
        self._policy: Policy | None = None
        self._rules = _OPEN

    @property
    def rules(self) -> IdentityRules:
        """Its rules under the policy in force now."""
        access = self._access
        if access is None:
            return _OPEN
        policy = access.policy
        if policy is not self._policy:
            self._policy, self._rules = policy, policy.rules_for(self.name)
        return self._rules

    @property
    def quota(self) -> QuotaState | None:
        """Its quota state, None when nothing is limited."""
        return None if self._access is None else self._access.quota_of(self.rules)


ANONYMOUS = Principal(ANONYMOUS_NAME, None)
"""Every client while authentication is off."""

BEARER = "bearer "


class AccessControl:
    """Authentication, authorization and quotas (see the module docstring).

    Args:
        auth: the ``auth`` section.
        tokens: the tokens file's tokens.
        wire: the native topic matcher.
        metrics: where refusals are counted.
        clock: seconds of a monotonic clock (the quotas' time).
    """

    def __init__(self, auth: AuthConfig, tokens: Tokens, wire: NativeWire, metrics: Metrics,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.enabled = auth.enabled
        self.policy = Policy(auth, tokens)
        self._wire = wire
        self._metrics = metrics
        self._clock = clock
        self._quotas: dict[str, QuotaState] = {}
        for name in [*self.policy.rules, OTHER] if self.enabled else ():
            for access in ("publish", "subscribe", "consume", "admin"):
                metrics.auth_denied.add(0, {"identity": name, "access": access})

    def replace(self, auth: AuthConfig, tokens: Tokens) -> None:
        """Put new rules in force at once (``auth.enabled`` itself needs a restart)."""
        self.policy = policy = Policy(auth, tokens)
        now = self._clock()
        for name, state in self._quotas.items():
            state.update(policy.rules[name].quotas if name in policy.rules
                         else auth.default_quotas, now)

    # ----------------------------------------------------------- authentication

    def principal_named(self, name: str) -> Principal:
        """The identity ``name`` as a caller that was authenticated elsewhere (by a member)."""
        return Principal(name, self) if self.enabled else ANONYMOUS

    def authenticate(self, transport: str, authorization: str | None,
                     certificate_names: Sequence[str]) -> Principal:
        """The caller, from its bearer token or else its verified client certificate.

        Args:
            transport: ``grpc`` or ``tcp``, for the metric.
            authorization: the ``authorization`` header (``Bearer <token>``), or the
                token itself from a TCP handshake (``transport="tcp"``), or None.
            certificate_names: the verified client certificate's subject CN and
                SANs (empty without one).

        Raises:
            EventStreamError: UNAUTHENTICATED: ``CREDENTIALS_MISSING`` or ``TOKEN_INVALID``.
        """
        if not self.enabled:
            return ANONYMOUS
        policy = self.policy
        if authorization is not None:
            token = authorization
            if transport == "grpc":
                if authorization[:len(BEARER)].lower() != BEARER:
                    self._failed(transport, "TOKEN_INVALID")
                    raise EventStreamError("TOKEN_INVALID", "authorization: expected "
                                           "'Bearer <token>'", field="authorization")
                token = authorization[len(BEARER):].strip()
            name = policy.tokens.identity_of(token)
            if name is None:
                self._failed(transport, "TOKEN_INVALID")
                raise EventStreamError("TOKEN_INVALID", "the bearer token is not valid (unknown, "
                                       "revoked or mistyped)", field="authorization")
            return Principal(name, self)
        if certificate_names:
            return Principal(policy.identity_of_certificate(certificate_names), self)
        self._failed(transport, "CREDENTIALS_MISSING")
        raise EventStreamError("CREDENTIALS_MISSING", "this server needs credentials: a bearer "
                               "token ('authorization: Bearer <token>') or a client certificate")

    def _failed(self, transport: str, reason: str) -> None:
        self._metrics.auth_failures.add(1, {"transport": transport, "reason": reason})

    def count_failure(self, transport: str, reason: str) -> None:
        """Count a failed authentication the listener found itself (a TLS handshake)."""
        self._failed(transport, reason)

    # ----------------------------------------------------------- authorization

    def publish_verdicts(self, principal: Principal, accepted: Accepted) -> bytes | None:
        """Which accepted events ``principal`` may publish: None (all) or a byte per event."""
        rules = principal.rules
        verdicts = rules.publish.verdicts(accepted, self._wire)
        if verdicts is not None:
            self.denied(rules, "publish", verdicts.count(0))
        return verdicts

    def denied(self, rules: IdentityRules, access: str, count: int = 1) -> None:
        """Count ``count`` refusals of ``access`` to ``rules``' identity."""
        self._metrics.auth_denied.add(count, {"identity": rules.label, "access": access})

    # ----------------------------------------------------------- quotas

    def quota_of(self, rules: IdentityRules) -> QuotaState | None:
        """The quota state of an identity (configured ones each, the others shared)."""
        if not self.enabled:
            return None
        state = self._quotas.get(rules.label)
        if state is None:
            quotas = rules.quotas if rules.label != OTHER else self.policy.auth.default_quotas
            state = self._quotas[rules.label] = QuotaState(quotas, self._clock())
        return state

    def take_publish(self, principal: Principal, events: int, size: int) -> None:
        """Charge a publish of ``events`` events and ``size`` bytes to ``principal``'s rates.

        Raises:
            EventStreamError: RESOURCE_EXHAUSTED (``QUOTA_EXCEEDED``) with the
                time to wait; nothing was charged.
        """
        state = principal.quota
        if state is None or not state.limits_publish:
            return
        exceeded = state.take_publish(events, size, self._clock())
        if exceeded is not None:
            raise self.exceeded(principal, exceeded)

    def exceeded(self, principal: Principal, exceeded: Exceeded) -> EventStreamError:
        """Count an exceeded quota and build its error."""
        label = principal.rules.label
        self._metrics.quota_exceeded.add(1, {"identity": label, "quota": exceeded.quota})
        return EventStreamError(
            "QUOTA_EXCEEDED", f"identity {principal.name!r} is over its quota "
            f"{exceeded.quota} ({exceeded.limit:g}); retry in {exceeded.retry_after:.3f} s",
            retry_after=exceeded.retry_after)

    def publish_pause(self, principal: Principal, events: int, size: int) -> float:
        """TCP: charge a publish already queued; seconds to pause reading after it (0: none)."""
        state = principal.quota
        if state is None or not state.limits_publish:
            return 0.0
        exceeded = state.charge_publish(events, size, self._clock())
        if exceeded is None:
            return 0.0
        self._metrics.quota_exceeded.add(1, {"identity": principal.rules.label,
                                             "quota": exceeded.quota})
        return exceeded.retry_after


def open_access(metrics: Metrics, wire: NativeWire) -> AccessControl:
    """Access control with authentication off: everyone is :data:`ANONYMOUS`."""
    return AccessControl(AuthConfig(), Tokens([]), wire, metrics)


__all__ = ["ANONYMOUS", "AccessControl", "Policy", "Principal", "open_access"]
