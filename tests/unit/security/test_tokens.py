"""The tokens file: hashes only, every bad line named, lookups by the token's hash."""

import hashlib

import pytest

from eventstream.server.security.tokens import MAX_TOKEN_BYTES, TokensError, parse_tokens


def line(identity: str, token: str) -> str:
    return f"{identity} sha256:{hashlib.sha256(token.encode()).hexdigest()}"


def test_tokens_name_their_identity_and_an_identity_may_have_several():
    tokens = parse_tokens("\n".join(["# rotation in progress", line("billing", "old"),
                                     line("billing", "new") + "  # added today", "",
                                     line("ops", "root")]), "tokens")
    assert len(tokens) == 3
    assert tokens.identity_of("old") == tokens.identity_of("new") == "billing"
    assert tokens.identity_of("root") == "ops"
    assert tokens.identity_of("ol") is None and tokens.identity_of("") is None
    assert tokens.identity_of("x" * (MAX_TOKEN_BYTES + 1)) is None


def test_every_bad_line_is_named_and_nothing_is_taken():
    text = "\n".join([line("billing", "a"), "billing s3cr3t", "bad name sha256:00",
                      "bad!name " + line("x", "b").split()[1], line("ops", "a"), "only-one"])
    with pytest.raises(TokensError) as refused:
        parse_tokens(text, "tokens")
    problems = refused.value.problems
    assert [p.split(":")[1] for p in problems] == ["2", "3", "4", "5", "6"]
    assert "never the token itself" in problems[0]
    assert "the same token as line 1" in problems[3]
