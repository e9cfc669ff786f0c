"""ircproto.sasl: AUTHENTICATE chunking both ways, every mechanism's success and failure with
the bytes a client sends, SCRAM-SHA-256 against scramp's client, the per-connection driver's
stale answers, and hypothesis over arbitrary AUTHENTICATE sequences."""
from __future__ import annotations

import base64

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from scramp import ScramClient, ScramMechanism

from ircproto.numerics import ERR_SASLFAIL, ERR_SASLTOOLONG
from ircproto.sasl import (
    MAX_PAYLOAD, MECHANISMS, SCRAM_ITERATIONS, SCRAM_SALT_BYTES, Aborted, AuthenticateBuffer,
    Authentication, Challenge, Failure, NeedCertificateOwner, NeedCredentials, NoReply, ScramKeys,
    Success, VerifyPassword, encode_challenge, start,
)

PASSWORD = "correct horse battery staple"
_salt, _stored, _server, _iterations = ScramMechanism().make_auth_info(PASSWORD, salt=b"s" * SCRAM_SALT_BYTES)
ALICE_KEYS = ScramKeys(_salt, _stored, _server, _iterations)
FINGERPRINT = "ab" * 32


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def send(auth: Authentication, data: bytes):
    """A client response as the AUTHENTICATE parameters a client sends: the last step."""
    steps = [auth.receive(param) for param in encode_challenge(data)]
    assert all(isinstance(s, NoReply) for s in steps[:-1])
    return steps[-1]


# Chunking, server to client ------------------------------------------------------------------


@pytest.mark.parametrize("size, lengths", [
    (0, [1]),  # "+"
    (1, [4]),
    (297, [396]),
    (298, [400, 1]),  # exactly 400 base64 bytes (padded): "+" follows
    (300, [400, 1]),
    (301, [400, 4]),
    (600, [400, 400, 1]),
    (601, [400, 400, 4]),
])
def test_encode_challenge_splits_at_400_and_ends_a_400_multiple_with_plus(size, lengths):
    lines = encode_challenge(b"x" * size)
    assert [len(line) for line in lines] == lengths
    assert (lines[-1] == "+") == (-(-size // 3) % 100 == 0)
    assert "".join(line for line in lines if line != "+") == b64(b"x" * size)


# Chunking, client to server ------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 2, 3, 297, 298, 300, 301, 599, 600, 601, 4000, MAX_PAYLOAD - 1, MAX_PAYLOAD])
def test_a_response_of_any_size_up_to_the_cap_comes_back_whole(size):
    data = bytes(i % 251 for i in range(size))
    buffer = AuthenticateBuffer()
    results = [buffer.feed(line) for line in encode_challenge(data)]
    assert all(r == NoReply() for r in results[:-1])
    assert results[-1] == data
    assert not buffer.pending


def test_plus_alone_is_an_empty_response():
    assert AuthenticateBuffer().feed("+") == b""


def test_a_400_byte_chunk_waits_for_more():
    buffer = AuthenticateBuffer()
    assert buffer.feed("QUFB" * 100) == NoReply()
    assert buffer.pending
    assert buffer.feed("QQ==") == b"AAA" * 100 + b"A"


def test_a_parameter_over_400_bytes_is_905_and_empties_the_buffer():
    buffer = AuthenticateBuffer()
    buffer.feed("QUFB" * 100)
    result = buffer.feed("QUFB" * 100 + "QQ==")
    assert isinstance(result, Failure) and result.numeric == ERR_SASLTOOLONG
    assert buffer.feed("+") == b""  # nothing left of the first chunk


def test_400_bytes_of_multibyte_text_counts_in_bytes():
    result = AuthenticateBuffer().feed("é" * 201)  # 201 characters, 402 bytes
    assert isinstance(result, Failure) and result.numeric == ERR_SASLTOOLONG


@pytest.mark.parametrize("size", [MAX_PAYLOAD + 1, MAX_PAYLOAD + 2, MAX_PAYLOAD + 3, MAX_PAYLOAD + 400])
def test_over_the_cap_is_904(size):
    buffer = AuthenticateBuffer()
    results = [buffer.feed(line) for line in encode_challenge(b"x" * size)]
    first = next(r for r in results if r != NoReply())  # (what follows a failure starts afresh)
    assert isinstance(first, Failure) and first.numeric == ERR_SASLFAIL


def test_the_cap_stops_an_endless_stream_of_chunks_early():
    buffer = AuthenticateBuffer(max_payload=1200)  # 1,600 base64 characters: four chunks
    results = [buffer.feed("QUFB" * 100) for _ in range(5)]
    assert results[:4] == [NoReply()] * 4
    assert isinstance(results[4], Failure) and results[4].numeric == ERR_SASLFAIL
    assert not buffer.pending


@pytest.mark.parametrize("param", [
    "QUFB====",  # too much padding
    "QQ==QUFB",  # data after the padding
    "QUF",  # not a multiple of 4
    "QUF!",
    "QUFB\n",
    "QU FB",
    "éééé",
    "=QUF",
])
def test_bad_base64_is_904(param):
    result = AuthenticateBuffer().feed(param)
    assert isinstance(result, Failure) and result.numeric == ERR_SASLFAIL


def test_bad_base64_in_a_later_chunk_fails_the_whole_response():
    buffer = AuthenticateBuffer()
    buffer.feed("QUFB" * 100)
    assert isinstance(buffer.feed("QQ=!"), Failure)


def test_an_empty_parameter_is_not_an_empty_response():
    assert isinstance(AuthenticateBuffer().feed(""), Failure)


def test_star_aborts_and_empties_the_buffer():
    buffer = AuthenticateBuffer()
    buffer.feed("QUFB" * 100)
    assert buffer.feed("*") == Aborted()
    assert not buffer.pending
    assert buffer.feed("QQ==") == b"A"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=MAX_PAYLOAD + 700))
def test_encoding_then_feeding_gives_the_bytes_back_or_fails_past_the_cap(data):
    buffer = AuthenticateBuffer()
    results = [buffer.feed(line) for line in encode_challenge(data)]
    first = next(r for r in results if r != NoReply())
    if len(data) <= MAX_PAYLOAD:
        assert first == data and len(results) == len(encode_challenge(data))
    else:
        assert isinstance(first, Failure) and first.numeric == ERR_SASLFAIL


# The driver: mechanisms, aborts, retries -----------------------------------------------------


def test_mechanisms_for_cap_ls():
    assert ",".join(MECHANISMS) == "PLAIN,SCRAM-SHA-256,EXTERNAL"


def test_each_mechanism_starts_with_an_empty_challenge():
    for mechanism in MECHANISMS:
        step = Authentication(fingerprint=FINGERPRINT).receive(mechanism)
        assert step == Challenge(b"") and step.lines() == ["+"]


@pytest.mark.parametrize("name", ["DIGEST-MD5", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1", "+", "QUFB", "x" * 500])
def test_an_unknown_mechanism_fails_with_the_list_and_changes_nothing(name):
    auth = Authentication()
    step = auth.receive(name)
    assert isinstance(step, Failure) and step.mechanisms and step.numeric == ERR_SASLFAIL
    assert not auth.in_progress
    assert auth.receive("PLAIN") == Challenge(b"")


def test_mechanism_names_are_case_insensitive():
    assert Authentication().receive("plain") == Challenge(b"")


def test_only_the_offered_mechanisms_start():
    auth = Authentication(mechanisms=("PLAIN",))
    assert isinstance(auth.receive("SCRAM-SHA-256"), Failure)
    assert auth.receive("PLAIN") == Challenge(b"")


def test_star_with_nothing_in_progress_is_906():
    assert Authentication().receive("*") == Aborted()


def test_star_mid_exchange_aborts_and_the_next_line_names_a_mechanism():
    auth = Authentication()
    auth.receive("PLAIN")
    auth.receive("QUFB" * 100)
    assert auth.receive("*") == Aborted()
    assert not auth.in_progress
    assert auth.receive("PLAIN") == Challenge(b"")


def test_a_client_may_retry_after_a_failure():
    auth = Authentication()
    auth.receive("PLAIN")
    assert isinstance(send(auth, b"no separators"), Failure)
    assert auth.receive("PLAIN") == Challenge(b"")
    assert isinstance(send(auth, b"\x00alice\x00pw"), VerifyPassword)


def test_a_chunking_error_ends_the_exchange():
    auth = Authentication()
    auth.receive("PLAIN")
    step = auth.receive("A" * 401)
    assert isinstance(step, Failure) and step.numeric == ERR_SASLTOOLONG
    assert not auth.in_progress


def test_abort_by_the_caller():
    auth = Authentication()
    assert auth.abort() == NoReply()
    auth.receive("PLAIN")
    assert auth.abort() == Aborted()
    assert not auth.in_progress


# PLAIN -------------------------------------------------------------------------------------


def plain(auth: Authentication, data: bytes):
    assert auth.receive("PLAIN") == Challenge(b"")
    return send(auth, data)


def test_plain_the_spec_example():
    auth = Authentication()
    auth.receive("PLAIN")
    step = auth.receive("amlsbGVzAGppbGxlcwBzZXNhbWU=")  # jilles\0jilles\0sesame
    assert isinstance(step, VerifyPassword) and (step.account, step.password) == ("jilles", "sesame")
    assert auth.verified(step, True) == Success("jilles")
    assert not auth.in_progress


def test_plain_without_authzid_and_casefolded():
    auth = Authentication()
    step = plain(auth, b"\x00Alice\x00sesame")
    assert isinstance(step, VerifyPassword) and step.account == "alice"
    assert auth.verified(step, True) == Success("alice")


def test_plain_the_password_is_not_in_the_repr():
    step = plain(Authentication(), b"\x00alice\x00sesame")
    assert "sesame" not in repr(step)


def test_plain_wrong_password_fails_naming_the_account():
    auth = Authentication()
    step = plain(auth, b"\x00alice\x00wrong")
    result = auth.verified(step, False)
    assert isinstance(result, Failure) and result.account == "alice" and result.numeric == ERR_SASLFAIL
    assert not auth.in_progress


def test_plain_only_true_is_yes():
    auth = Authentication()
    step = plain(auth, b"\x00alice\x00pw")
    assert isinstance(auth.verified(step, 1), Failure)


def test_plain_authzid_equal_to_authcid_in_another_case():
    auth = Authentication()
    step = plain(auth, b"ALICE\x00alice\x00pw")
    assert auth.verified(step, True) == Success("alice")


@pytest.mark.parametrize("data, why", [
    (b"bob\x00alice\x00pw", "the authzid names another account"),
    (b"\x00\x00pw", "empty account name"),
    (b"\x00alice\x00", "empty password"),
    (b"alice\x00pw", "two fields"),
    (b"\x00alice\x00pw\x00more", "four fields"),
    (b"\x00al\xffice\x00pw", "not UTF-8"),
    (b"\x00alice\x00p\xc3", "truncated UTF-8"),
    (b"", "empty"),
])
def test_plain_failures(data, why):
    auth = Authentication()
    step = plain(auth, data)
    assert isinstance(step, Failure), why
    assert not auth.in_progress


def test_plain_a_long_unicode_password_over_several_chunks():
    password = "пароль" + "🔑" * 300  # 306 characters, 1,212 bytes: five AUTHENTICATE lines
    data = b"\x00alice\x00" + password.encode()
    assert len(encode_challenge(data)) == 5
    step = plain(Authentication(), data)
    assert isinstance(step, VerifyPassword) and step.password == password


# EXTERNAL ----------------------------------------------------------------------------------


def test_external_without_a_certificate_fails_at_once():
    auth = Authentication()
    step = auth.receive("EXTERNAL")
    assert isinstance(step, Failure) and not auth.in_progress


def test_external_without_authzid():
    auth = Authentication(fingerprint=FINGERPRINT)
    auth.receive("EXTERNAL")
    step = auth.receive("+")
    assert isinstance(step, NeedCertificateOwner) and (step.fingerprint, step.authzid) == (FINGERPRINT, None)
    assert auth.credentials(step, "Alice") == Success("alice")


def test_external_with_the_owners_name_as_authzid():
    auth = Authentication(fingerprint=FINGERPRINT)
    auth.receive("EXTERNAL")
    step = send(auth, b"ALICE")
    assert step.authzid == "ALICE"
    assert auth.credentials(step, "alice") == Success("alice")


def test_external_with_someone_elses_name_as_authzid():
    auth = Authentication(fingerprint=FINGERPRINT)
    auth.receive("EXTERNAL")
    step = send(auth, b"bob")
    assert isinstance(auth.credentials(step, "alice"), Failure)


@pytest.mark.parametrize("owner", [None, "", 42])
def test_external_a_certificate_nobody_holds(owner):
    auth = Authentication(fingerprint=FINGERPRINT)
    auth.receive("EXTERNAL")
    step = auth.receive("+")
    assert isinstance(auth.credentials(step, owner), Failure)


@pytest.mark.parametrize("data", [b"\xff", b"al\x00ice"])
def test_external_a_malformed_authzid(data):
    auth = Authentication(fingerprint=FINGERPRINT)
    auth.receive("EXTERNAL")
    assert isinstance(send(auth, data), Failure)


# SCRAM-SHA-256 -----------------------------------------------------------------------------


def scram_login(auth: Authentication, user: str, password: str, keys: ScramKeys | None = ALICE_KEYS):
    """A whole exchange with scramp's client; returns every step the server gave."""
    client = ScramClient(["SCRAM-SHA-256"], user, password)
    steps = [auth.receive("SCRAM-SHA-256")]
    steps.append(send(auth, client.get_client_first().encode()))
    assert isinstance(steps[-1], NeedCredentials)
    steps.append(auth.credentials(steps[-1], keys))
    assert isinstance(steps[-1], Challenge)
    client.set_server_first(steps[-1].data.decode())
    steps.append(send(auth, client.get_client_final().encode()))
    if isinstance(steps[-1], Challenge):
        client.set_server_final(steps[-1].data.decode())  # the client checks the server too
        steps.append(auth.receive("+"))
    return steps


def test_scram_success():
    auth = Authentication()
    steps = scram_login(auth, "Alice", PASSWORD)
    assert steps[1].account == "alice"
    assert steps[-1] == Success("alice")
    assert not auth.in_progress


def test_scram_wrong_password_is_a_failure_naming_the_account():
    auth = Authentication()
    steps = scram_login(auth, "alice", "wrong")
    assert isinstance(steps[-1], Failure) and steps[-1].account == "alice"
    assert len(steps) == 4 and not auth.in_progress


def test_scram_unknown_account_looks_like_a_wrong_password():
    key = b"k" * 32
    first = scram_login(Authentication(fake_salt_key=key), "nobody", "x", keys=None)
    again = scram_login(Authentication(fake_salt_key=key), "nobody", "y", keys=None)
    other = scram_login(Authentication(fake_salt_key=key), "somebody", "x", keys=None)
    assert isinstance(first[-1], Failure) and first[-1].account == "nobody"

    def salt_and_count(step):
        fields = dict(item.split("=", 1) for item in step.data.decode().split(","))
        return base64.b64decode(fields["s"]), int(fields["i"])

    salt, count = salt_and_count(first[2])
    assert (len(salt), count) == (SCRAM_SALT_BYTES, SCRAM_ITERATIONS)  # like a real account's
    assert salt_and_count(again[2]) == (salt, count)  # the same every time it is asked
    assert salt_and_count(other[2])[0] != salt


def test_scram_even_the_right_password_fails_on_made_up_keys():
    steps = scram_login(Authentication(), "alice", PASSWORD, keys=None)
    assert isinstance(steps[-1], Failure)


def test_scram_unusable_keys_from_the_store_are_a_failure():
    auth = Authentication()
    client = ScramClient(["SCRAM-SHA-256"], "alice", PASSWORD)
    auth.receive("SCRAM-SHA-256")
    step = send(auth, client.get_client_first().encode())
    bad = ScramKeys(b"short", ALICE_KEYS.stored_key, ALICE_KEYS.server_key, 1)  # scramp refuses both
    assert isinstance(auth.credentials(step, bad), Failure)
    assert not auth.in_progress


def test_scram_data_after_the_servers_final_message_fails():
    auth = Authentication()
    client = ScramClient(["SCRAM-SHA-256"], "alice", PASSWORD)
    auth.receive("SCRAM-SHA-256")
    step = auth.credentials(send(auth, client.get_client_first().encode()), ALICE_KEYS)
    client.set_server_first(step.data.decode())
    assert isinstance(send(auth, client.get_client_final().encode()), Challenge)
    assert isinstance(send(auth, b"v=again"), Failure)


@pytest.mark.parametrize("first", [
    b"",
    b"garbage",
    b"n,,",
    b"n,,n=alice",  # no nonce
    b"p=tls-unique,,n=alice,r=abc",  # channel binding, which is not offered
    b"x,,n=alice,r=abc",
    b"n,a=alice,n=alice,r=abc",  # an authzid
    b"n,,r=abc,n=alice",
    b"n,,n=,r=abc",
    b"n,,n=al=ice,r=abc",  # '=' not followed by 2C or 3D
    b"n,,n=al\xffice,r=abc",
    b"n,,n=al\x00ice,r=abc",
])
def test_scram_malformed_client_first_fails_before_any_lookup(first):
    auth = Authentication()
    auth.receive("SCRAM-SHA-256")
    assert isinstance(send(auth, first), Failure)
    assert not auth.in_progress


@pytest.mark.parametrize("first", [
    b"n,,n=alice,r=",  # empty nonce
    b"n,,n=alice,r=a\x7fb",  # a nonce with a control character
    b"n,,n=alice,r=abc,m=ext",
    b"n,,n=alice,r=abc,r=abc",
    b"n,,n=al\xc2\xadice,r=abc",  # SASLprep would turn the name into another one
])
def test_scram_client_first_that_scramp_refuses_fails_after_the_lookup(first):
    auth = Authentication()
    auth.receive("SCRAM-SHA-256")
    step = send(auth, first)
    assert isinstance(step, NeedCredentials)
    assert isinstance(auth.credentials(step, ALICE_KEYS), Failure)


@pytest.mark.parametrize("final", [
    "garbage",
    "",
    "c=biws,r={nonce}",  # no proof
    "c=biws,r=wrong,p=" + b64(b"x" * 32),
    "c=bad!,r={nonce},p=" + b64(b"x" * 32),
    "c=biws,r={nonce},p=" + b64(b"x" * 31),  # a proof of the wrong length
    "c=biws,r={nonce},p=" + b64(b"x" * 32),  # a wrong proof
    "c=eSws,r={nonce},p=" + b64(b"x" * 32),  # claims the 'y' flag the first message did not
    "c=biws,r={nonce},p=!!!!",
])
def test_scram_malformed_or_wrong_client_final_fails(final):
    auth = Authentication()
    client = ScramClient(["SCRAM-SHA-256"], "alice", PASSWORD)
    auth.receive("SCRAM-SHA-256")
    step = auth.credentials(send(auth, client.get_client_first().encode()), ALICE_KEYS)
    nonce = dict(item.split("=", 1) for item in step.data.decode().split(","))["r"]
    result = send(auth, final.format(nonce=nonce).encode())
    assert isinstance(result, Failure)
    assert not auth.in_progress


def test_scram_with_the_y_flag():
    auth = Authentication()
    client = ScramClient(["SCRAM-SHA-256"], "alice", PASSWORD)
    first = client.get_client_first()
    assert first.startswith("n,,")
    # A client that could bind channels but sees no -PLUS says 'y'; the proof covers the flag.
    client.gs2_header = type(client.gs2_header)("y", None)
    first = "y" + first[1:]
    auth.receive("SCRAM-SHA-256")
    step = auth.credentials(send(auth, first.encode()), ALICE_KEYS)
    client.set_server_first(step.data.decode())
    final = send(auth, client.get_client_final().encode())
    assert isinstance(final, Challenge)
    assert auth.receive("+") == Success("alice")


# Answers in the wrong place ------------------------------------------------------------------


def test_a_late_yes_after_an_abort_logs_nobody_in():
    auth = Authentication()
    question = plain(auth, b"\x00alice\x00pw")
    assert auth.receive("*") == Aborted()
    assert auth.verified(question, True) == NoReply()
    assert not auth.in_progress


def test_a_late_answer_to_an_earlier_exchange_is_ignored():
    auth = Authentication()
    old = plain(auth, b"\x00alice\x00pw")
    auth.abort()
    new = plain(auth, b"\x00bob\x00pw")
    assert auth.verified(old, True) == NoReply()
    assert auth.verified(new, True) == Success("bob")


def test_a_client_speaking_while_its_response_is_checked_fails():
    auth = Authentication()
    question = plain(auth, b"\x00alice\x00pw")
    assert isinstance(auth.receive("QUFB"), Failure)
    assert auth.verified(question, True) == NoReply()


def test_a_star_while_the_response_is_checked_aborts():
    auth = Authentication()
    question = plain(auth, b"\x00alice\x00pw")
    assert auth.receive("*") == Aborted()
    assert auth.credentials(question, "alice") == NoReply()


def test_an_answer_to_another_kind_of_question_fails():
    auth = Authentication()
    question = plain(auth, b"\x00alice\x00pw")
    assert isinstance(auth.credentials(question, ALICE_KEYS), Failure)


def test_an_answer_with_no_question():
    auth = Authentication()
    assert auth.verified(None, True) == NoReply()
    assert auth.credentials(NeedCredentials("alice"), ALICE_KEYS) == NoReply()


def test_fail_by_the_caller_ends_the_exchange():
    auth = Authentication()
    question = plain(auth, b"\x00alice\x00pw")
    assert isinstance(auth.fail("throttled"), Failure)
    assert auth.verified(question, True) == NoReply()
    assert auth.fail("again") == NoReply()


def test_an_exchange_used_out_of_order_fails_and_stays_done():
    exchange = start("PLAIN")
    assert isinstance(exchange.step(b"\x00a\x00b"), Failure)  # before begin
    assert exchange.done
    assert isinstance(exchange.begin(), Failure)
    exchange = start("scram-sha-256")
    exchange.begin()
    assert isinstance(exchange.verified(True), Failure)
    assert start("NOPE") is None and start(None) is None


# Hypothesis: arbitrary sequences -------------------------------------------------------------


def honest_answer(auth: Authentication, question):
    """What a correct integrator answers: alice's password is PASSWORD, her SCRAM keys are
    ALICE_KEYS and FINGERPRINT is her certificate; nobody else exists."""
    if isinstance(question, VerifyPassword):
        return auth.verified(question, question.account == "alice" and question.password == PASSWORD)
    if isinstance(question, NeedCredentials):
        return auth.credentials(question, ALICE_KEYS if question.account == "alice" else None)
    return auth.credentials(question, "alice" if question.fingerprint == FINGERPRINT else None)


def responses() -> st.SearchStrategy[bytes]:
    fields = st.sampled_from([b"", b"alice", b"ALICE", b"bob", PASSWORD.encode(), b"wrong", b"\xff"])
    return st.one_of(
        st.binary(max_size=700),
        st.builds(lambda a, b, c: a + b"\x00" + b + b"\x00" + c, fields, fields, fields),
        st.sampled_from([b"n,,n=alice,r=abc", b"n,,n=bob,r=x", b"c=biws,r=abc,p=AAAA", b"y,,n=alice,r=n"]),
    )


# A mechanism's name, then a response (a client attempting a login), answered at once or not:
attempts = st.tuples(st.sampled_from(["PLAIN", "EXTERNAL"]),
                     st.sampled_from(["", "", "alice", "ALICE", "bob", "\udcff"]),  # authzid
                     st.sampled_from(["alice", "ALICE", "bob", "", "\udcff"]),  # authcid
                     st.sampled_from([PASSWORD, PASSWORD, "wrong", "", PASSWORD + "\udcff"]),  # password
                     st.booleans())
items = st.one_of(
    attempts,
    attempts,
    st.sampled_from(["PLAIN", "plain", "SCRAM-SHA-256", "EXTERNAL", "*", "+", "", "QUFB" * 100, "A" * 401]),
    st.text(max_size=50),
    responses().map(lambda data: encode_challenge(data)[0]),  # a first chunk only
    st.tuples(st.just("response"), responses(), st.booleans()),  # a whole response, answered at once?
    st.tuples(st.just("answer"), st.integers(min_value=-3, max_value=20)),  # a question, maybe an old one
    st.tuples(st.just("scram login"), st.booleans()),  # a genuine client, right or wrong password
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(items, max_size=30), st.sampled_from([None, FINGERPRINT, "other"]))
def test_arbitrary_authenticate_sequences_never_raise_and_succeed_only_with_the_right_credentials(
        sequence, fingerprint):
    """Lines, whole responses, genuine SCRAM logins and answers to questions (late ones too)
    in any order: every call returns a Step, and a Success comes only from the right
    credentials, for a question asked since the client last spoke."""
    auth = Authentication(fingerprint=fingerprint)
    spoke = 0  # how many AUTHENTICATE lines the client has sent
    questions: list[tuple[object, int]] = []  # every question asked, with `spoke` when it was
    answered: set[int] = set()

    def check(step):
        assert isinstance(step, (Challenge, NoReply, NeedCredentials, NeedCertificateOwner, VerifyPassword,
                                 Success, Failure, Aborted))
        assert not isinstance(step, Success) or step.account == "alice"
        event(type(step).__name__)
        if isinstance(step, (NeedCredentials, NeedCertificateOwner, VerifyPassword)):
            questions.append((step, spoke))
        return step

    def line(param: str):
        nonlocal spoke
        spoke += 1
        step = check(auth.receive(param))
        if isinstance(step, Success):  # only SCRAM succeeds on a line: its genuine login below
            raise AssertionError(f"a success on a line that no genuine client sent: {param!r}")
        return step

    def answer(index: int):
        question, asked = questions[index]
        fresh = asked == spoke and id(question) not in answered
        answered.add(id(question))
        step = check(honest_answer(auth, question))
        if not fresh:
            assert step == NoReply()  # a late answer changes nothing
        if isinstance(step, Success):
            event(f"success after {type(question).__name__}")
            if isinstance(question, NeedCertificateOwner):
                assert fingerprint == FINGERPRINT and question.authzid in (None, "alice", "ALICE")
            else:
                assert isinstance(question, VerifyPassword) and question.password == PASSWORD
        return step

    for item in sequence:
        if isinstance(item, str):
            line(item)
        elif item[0] == "response":
            for param in encode_challenge(item[1]):
                line(param)
            if item[2] and questions and questions[-1][1] == spoke:
                answer(len(questions) - 1)
        elif item[0] in ("PLAIN", "EXTERNAL"):
            _, authzid, authcid, password, at_once = item
            data = authzid if item[0] == "EXTERNAL" else "\x00".join([authzid, authcid, password])
            for param in [item[0], *encode_challenge(data.encode("utf-8", "surrogateescape"))]:
                line(param)
            if at_once and questions and questions[-1][1] == spoke:
                answer(len(questions) - 1)
        elif item[0] == "answer":
            if questions:
                answer(item[1] % len(questions))
        else:  # a whole genuine SCRAM login, whatever state the driver is in
            from_scratch = not auth.in_progress
            client = ScramClient(["SCRAM-SHA-256"], "alice", PASSWORD if item[1] else "wrong")
            steps = [line("SCRAM-SHA-256")]
            steps += [line(param) for param in encode_challenge(client.get_client_first().encode())]
            if isinstance(steps[-1], NeedCredentials):
                steps.append(answer(len(questions) - 1))
            if isinstance(steps[-1], Challenge) and steps[-1].data:
                client.set_server_first(steps[-1].data.decode())
                for param in encode_challenge(client.get_client_final().encode()):
                    spoke += 1
                    steps.append(check(auth.receive(param)))
                if isinstance(steps[-1], Challenge):
                    client.set_server_final(steps[-1].data.decode())
                    spoke += 1
                    steps.append(check(auth.receive("+")))
            successes = [s for s in steps if isinstance(s, Success)]
            if item[1] and from_scratch:
                event("genuine SCRAM login")
                assert steps[-1] == Success("alice") and len(successes) == 1
            else:
                assert not successes
