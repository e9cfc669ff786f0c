"""The TLS listener beside the plain one, the client's --tls, and certificate reload on SIGHUP."""
import os
import signal
import socket
import ssl
import subprocess
import sys

import pytest

from tests.integration.harness import ROOT, Server, connections_on_distinct_workers, wait_for


def make_certificate(directory, name):
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", f"/CN={name}",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=30)
    return cert, key


@pytest.fixture
def tls_server(tmp_path):
    cert, key = make_certificate(tmp_path, "first")
    srv = Server(2, "--tls-port", "0", "--tls-cert", str(cert), "--tls-key", str(key))
    srv.cert = cert
    srv.key = key
    yield srv
    srv.stop()


def tls_connect(srv, cafile):
    context = ssl.create_default_context(cafile=str(cafile))
    raw = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=10)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def peer_subject(sock):
    return dict(item[0] for item in sock.getpeercert()["subject"])["commonName"]


def test_tls_clients_chat_with_plain_ones(tls_server):
    secure = tls_connect(tls_server, tls_server.cert)
    secure.sendall(b"NICK secure\r\nUSER s 0 * :s\r\nJOIN #mixed\r\n")
    plain = tls_server.connect()
    plain.register("plain")
    data = b""
    while b"366" not in data:
        data += secure.recv(65536)
    plain.send("JOIN #mixed")
    plain.expect("366")
    plain.send("PRIVMSG #mixed :over plain TCP")
    while b"over plain TCP" not in data:
        data += secure.recv(65536)
    secure.sendall(b"PRIVMSG #mixed :over TLS\r\n")
    assert plain.expect("PRIVMSG").params == ["#mixed", "over TLS"]
    secure.close()


def run_client(srv, *flags):
    return subprocess.run([sys.executable, "-m", "client", "--port", str(srv.tls_port), "--nick", "tlsbot", *flags],
                          input="hello over tls\n", capture_output=True, text=True, cwd=ROOT, timeout=30)


def test_the_client_verifies_certificates_unless_told_not_to(tls_server):
    refused = run_client(tls_server, "--tls")
    assert refused.returncode == 1
    assert "certificate was not accepted" in refused.stderr and "--insecure" in refused.stderr
    listener = tls_server.connect()
    listener.register("listener")
    listener.send("JOIN #lobby")
    listener.expect("366")
    accepted = run_client(tls_server, "--tls", "--insecure")
    assert accepted.returncode == 0, accepted.stderr
    assert listener.expect("PRIVMSG").params == ["#lobby", "hello over tls"]


def served_certificate(sock):
    return sock.getpeercert(binary_form=True)


def unverified_connect(srv):
    """A TLS connection that accepts any certificate, so one that is still the old one is seen."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=10)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def certificates_by_worker(srv):
    """The certificate each worker serves to a new connection, by worker pid."""
    held = connections_on_distinct_workers(srv, srv.nworkers, lambda: unverified_connect(srv))
    served = {pid: served_certificate(sock) for pid, sock in held.items()}
    for sock in held.values():
        sock.close()
    return served


def test_sighup_reloads_the_certificate(tls_server, tmp_path):
    kept = tls_connect(tls_server, tls_server.cert)
    assert peer_subject(kept) == "first"
    first_der = served_certificate(kept)
    new_cert, new_key = make_certificate(tmp_path, "second")
    new_der = ssl.PEM_cert_to_DER_cert(new_cert.read_text())
    assert set(certificates_by_worker(tls_server).values()) == {first_der}
    tls_server.cert.write_bytes(new_cert.read_bytes())
    tls_server.key.write_bytes(new_key.read_bytes())
    tls_server.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: set(certificates_by_worker(tls_server).values()) == {new_der},
             what="the new certificate on every worker")
    with tls_connect(tls_server, new_cert) as sock:  # and it verifies as the new one
        assert peer_subject(sock) == "second"
    kept.sendall(b"PING :still\r\n")  # the connection made with the old certificate lives on
    assert b"PONG" in kept.recv(4096)


def refuse_a_broken_certificate(srv):
    """Every worker serves the first certificate (so each has loaded it); then the file is
    broken and SIGHUP sent, and the supervisor says it refused the reload."""
    first_der = ssl.PEM_cert_to_DER_cert(srv.cert.read_text())
    assert set(certificates_by_worker(srv).values()) == {first_der}
    srv.cert.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    srv.proc.send_signal(signal.SIGHUP)
    assert "server.tls_cert" in srv.wait_for_log("configuration not reloaded")
    return first_der


def test_a_certificate_that_does_not_load_on_sighup_keeps_the_old_one(tls_server):
    first_der = refuse_a_broken_certificate(tls_server)
    assert set(certificates_by_worker(tls_server).values()) == {first_der}
    assert tls_server.proc.poll() is None


def test_a_worker_started_after_a_refused_certificate_serves_the_kept_one(tls_server):
    first_der = refuse_a_broken_certificate(tls_server)
    victim = next(iter(tls_server.current_workers()))
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: victim not in tls_server.current_workers()
             and len(tls_server.current_workers()) == tls_server.nworkers, what="a replacement worker")
    assert set(certificates_by_worker(tls_server).values()) == {first_der}
    assert tls_server.proc.poll() is None


def test_a_missing_certificate_stops_the_server_with_the_key_named(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "hub", "--port", "0", "--tls-cert", str(tmp_path / "nope.pem"),
                           "--tls-key", str(tmp_path / "nope.key")], capture_output=True, text=True, timeout=30,
                          cwd=ROOT)
    assert proc.returncode == 2
    assert "server.tls_cert" in proc.stderr
