"""Hostile input against a live server: whatever one client sends, its connection lives (unless it
asked to leave), the server logs no crash, and clients on other workers carry on."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.harness import Server, clients_on_distinct_workers
from workers.commands import COMMANDS as TABLE

# Every command in the table but QUIT (which ends the connection, as asked), and some that are not.
COMMANDS = [*(name for name in TABLE if name != "QUIT"), "FOO", "001", "cap"]
word = st.text(alphabet=st.sampled_from(list("ab#&,:*!@+-o0 ~\x01é[]%<>=;\\bklmnstiv") + ["\udcff"]), max_size=12)


@st.composite
def lines(draw):
    params = draw(st.lists(word.filter(lambda w: " " not in w and not w.startswith(":")), max_size=5))
    line = " ".join([draw(st.sampled_from(COMMANDS))] + [p for p in params if p])
    if draw(st.booleans()):
        line += " :" + draw(word)
    if draw(st.booleans()):
        line = "@" + draw(word).replace(" ", "") + " " + line
    return line.encode("utf-8", "surrogateescape")


@pytest.fixture(scope="module")
def fuzzed():
    srv = Server(2)
    yield srv
    srv.stop()
    assert "Traceback" not in srv.stderr, srv.stderr[-3000:]


@pytest.fixture(scope="module")
def fuzzer(fuzzed):
    client = fuzzed.connect()
    client.register("fuzzer")
    client.send("JOIN #a,#b")
    client.expect("366", "fuzzer", "#b")
    return client


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(lines(), min_size=1, max_size=5))
def test_random_commands_never_cost_the_connection(fuzzer, batch):
    for line in batch:
        fuzzer.send(line)
    fuzzer.sync()  # still connected, and every line has been handled
    assert not fuzzer.closed


def test_others_still_chat_after_the_fuzzing(fuzzed, fuzzer):
    a, b = clients_on_distinct_workers(fuzzed, 2)
    a.register("calm_a")
    b.register("calm_b")
    a.send("PRIVMSG calm_b :all good?")
    assert b.expect("PRIVMSG").params == ["calm_b", "all good?"]
    fuzzer.sync()


@pytest.fixture(scope="module")
def bystander(fuzzed):
    client = fuzzed.connect()
    client.register("bystander")
    return client


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=st.binary(max_size=3000), register_first=st.booleans())
def test_random_byte_streams_never_disturb_anyone_else(fuzzed, bystander, blob, register_first):
    import socket
    with socket.create_connection(("127.0.0.1", fuzzed.port), timeout=10) as raw:
        if register_first:
            raw.sendall(b"NICK rnd" + str(abs(hash(blob)) % 100000).encode() + b"\r\nUSER r 0 * :r\r\n")
        try:
            raw.sendall(blob)
        except OSError:
            pass  # the server may already have hung up on us: that is allowed
    bystander.sync()  # served throughout
    assert not bystander.closed
