"""The nested ``cluster.tls`` key: read from the file, each problem naming its key and position."""

import pytest

from eventstream.server.config import ConfigError, load_config
from eventstream.server.config.model import PeerTlsConfig


def write(tmp_path, body: str) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(body)
    return str(path)


def test_the_members_certificate_files_are_read(tmp_path):
    pem = tmp_path / "member.pem"
    pem.write_text("x")
    config = load_config(write(tmp_path, f"""\
cluster:
  tls:
    cert_file: {pem}
    key_file: {pem}
    ca_file: {pem}
    server_name: eventstream-headless.events.svc.cluster.local
"""), env={})
    assert config.cluster.tls == PeerTlsConfig(str(pem), str(pem), str(pem),
                                               "eventstream-headless.events.svc.cluster.local")
    assert load_config("/dev/null", env={}).cluster.tls is None   # plaintext by default


def test_each_problem_names_its_key_and_line(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, """\
cluster:
  tls:
    cert_file: /nowhere/member.pem
    key_fil: /nowhere/member.key
    reload_interval_seconds: 0
"""), env={})
    problems = caught.value.problems
    assert any(":3:16: cluster.tls.cert_file: no such file: /nowhere/member.pem" in p
               for p in problems), problems
    assert any(":4:5: cluster.tls: unknown key 'key_fil' (did you mean 'cluster.tls.key_file'?)"
               in p for p in problems), problems
    assert any(":3:5: cluster.tls: needs key_file, ca_file" in p for p in problems), problems
    assert any("cluster.tls.reload_interval_seconds: must be a number between 0.05 and 3600"
               in p for p in problems), problems


def test_it_is_set_in_the_file_only():
    with pytest.raises(ConfigError, match=r"cluster\.tls: can only be set in the config file"):
        load_config("/dev/null", env={"EVENTSTREAM_CLUSTER__TLS": "x"})
