"""Security: TLS certificates, client identities, per-topic permissions, quotas.

See docs/security.md. The listeners ask :class:`AccessControl` who a client
is (a bearer token or a verified client certificate) and what it may do;
:class:`ServerTls` holds the certificate they serve; :class:`SecurityReload`
takes changed files without a restart.
"""

from .access import ANONYMOUS, AccessControl, Policy, Principal, open_access
from .patterns import covers, intersects
from .reload import CertificateWatch, SecurityReload, read_tokens
from .rules import IdentityRules, TopicRule
from .tls import Material, ServerTls, TlsFileError, TlsFiles, server_context
from .tokens import Tokens, TokensError, parse_tokens

__all__ = [
    "ANONYMOUS",
    "AccessControl",
    "CertificateWatch",
    "IdentityRules",
    "Material",
    "Policy",
    "Principal",
    "SecurityReload",
    "ServerTls",
    "TlsFileError",
    "TlsFiles",
    "Tokens",
    "TokensError",
    "TopicRule",
    "covers",
    "intersects",
    "open_access",
    "parse_tokens",
    "read_tokens",
    "server_context",
]
