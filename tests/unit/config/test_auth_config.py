"""The tls and auth sections: nested identities read with their positions, cross-checks."""

import pytest

from eventstream.server.config import ConfigError, load_config
from eventstream.server.config.model import QuotasConfig

GOOD = """\
tls:
  enabled: true
  cert_file: {cert}
  key_file: {cert}
  client_ca_file: {cert}
  client_auth: require
auth:
  enabled: true
  default_quotas:
    publish_events_per_second: 100
  identities:
    - name: billing
      certificate_names: [billing.svc, "spiffe://cluster/billing"]
      publish: {{allow: ["orders/#"], deny: ["orders/secret/#"]}}
      subscribe: {{allow: ["orders/#"]}}
      consume: {{allow: ["orders/#"], groups: [billing, "billing-*"]}}
      quotas: {{max_subscriptions: 3, burst_seconds: 0.5}}
    - name: ops
      admin: true
ingest:
  udp_allowed_networks: [10.0.0.0/8, "::1"]
"""


def test_identities_and_quotas_are_read(tmp_path):
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    path = tmp_path / "c.yaml"
    path.write_text(GOOD.format(cert=cert))
    config = load_config(str(path), env={})
    billing, ops = config.auth.identities
    assert billing.name == "billing" and billing.certificate_names[1] == "spiffe://cluster/billing"
    assert billing.publish.deny == ("orders/secret/#",) and billing.consume.groups[1] == "billing-*"
    assert billing.quotas == QuotasConfig(max_subscriptions=3, burst_seconds=0.5)
    assert ops.admin and ops.quotas is None and ops.publish.allow == ()
    assert config.auth.default_quotas.publish_events_per_second == 100.0
    assert config.ingest.udp_allowed_networks == ("10.0.0.0/8", "::1")


def test_every_problem_names_its_key_path_and_position(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("""\
auth:
  identities:
    - name: a
      publish: {allow: ["a/#/b", 3], denny: []}
      quotas: {max_subscriptions: -1}
    - name: a
    - name: "bad name"
    - name: c
      certificate_names: [a]
      consume: {groups: ["x/y"]}
      admin: yes please
""")
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), env={})
    problems = caught.value.problems
    expected = [
        ":4:25: auth.identities[0].publish.allow[0]: not a topic pattern",
        ":4:34: auth.identities[0].publish.allow[1]: must be a string, got 3",
        ":4:38: auth.identities[0].publish: unknown key 'denny' (did you mean "
        "'auth.identities[0].publish.deny'?)",
        ":5:35: auth.identities[0].quotas.max_subscriptions: must be an integer between 0 and "
        "1000000, got -1",
        ":6:7: auth.identities[1].name: 'a' is also auth.identities[0]; keep one",
        ":7:13: auth.identities[2].name: must be 1 to 128 letters",
        ":9:26: auth.identities[3].certificate_names: 'a' already names identity 'a'",
        ":10:26: auth.identities[3].consume.groups[0]: must be a group name",
        ":11:14: auth.identities[3].admin: expected true or false",
    ]
    for fragment in expected:
        assert any(f"{path}{fragment}" in problem for problem in problems), (fragment, problems)


def test_a_certificate_name_is_one_identitys(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("auth:\n  identities:\n    - name: a\n    - name: b\n"
                    "      certificate_names: [a]\n")
    with pytest.raises(ConfigError, match=r":5:26: auth.identities\[1\].certificate_names: 'a' "
                                          r"already names identity 'a'"):
        load_config(str(path), env={})


def test_identities_come_from_the_file_only():
    with pytest.raises(ConfigError, match=r"env EVENTSTREAM_AUTH__IDENTITIES: auth\.identities: "
                                          r"can only be set in the config file"):
        load_config("/dev/null", env={"EVENTSTREAM_AUTH__IDENTITIES": "[a]"})


def test_tls_and_auth_need_what_they_use(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config("/dev/null", env={"EVENTSTREAM_TLS__ENABLED": "true",
                                      "EVENTSTREAM_TLS__CLIENT_AUTH": "require",
                                      "EVENTSTREAM_AUTH__ENABLED": "true",
                                      "EVENTSTREAM_INGEST__UDP_ALLOWED_NETWORKS": "10.0.0.0/33"})
    problems = "\n".join(caught.value.problems)
    assert "tls.cert_file is required with tls.enabled" in problems
    assert "'require' needs tls.client_ca_file" in problems
    assert "ingest.udp_allowed_networks: must be a list of networks in CIDR" in problems
    with pytest.raises(ConfigError) as caught:
        load_config("/dev/null", env={"EVENTSTREAM_AUTH__ENABLED": "true"})
    problems = "\n".join(caught.value.problems)
    assert "UDP carries no credentials" in problems
    assert "clients have no way to authenticate" in problems
    config = load_config("/dev/null", env={"EVENTSTREAM_AUTH__ENABLED": "true",
                                           "EVENTSTREAM_INGEST__UDP_ENABLED": "false",
                                           "EVENTSTREAM_AUTH__TOKENS_FILE": "/dev/null"})
    assert config.auth.enabled and not config.ingest.udp_enabled
