"""What a worker sends again after its hub dies (workers/worker.py `to_replay`), on plain data.

The hub says how far it has handled (D_HANDLED); of the unacknowledged requests up to there,
state changes are not made twice, messages are sent again (the copies are dropped by msgid),
and a store question is asked again only if its client still waits on that very request."""
from ipc import link
from workers.worker import to_replay

AWAY = (link.R_AWAY, 1, "lunch")


def history(cid: int, target: str) -> tuple:
    return (link.R_HISTORY, cid, ("LATEST", target, None, 50))


def message(cid: int, text: str) -> tuple:
    return (link.R_CHANMSG, cid, "#room", text)


def test_past_the_handled_mark_everything_is_sent_again():
    q = history(1, "#a")
    unacked = [(1, AWAY), (2, message(1, "hi")), (3, q)]
    assert to_replay(unacked, 0, lambda cid: None) == [AWAY, message(1, "hi"), q]


def test_handled_state_changes_are_not_made_again_but_messages_are():
    unacked = [(1, AWAY), (2, message(1, "hi"))]
    assert to_replay(unacked, 2, lambda cid: None) == [message(1, "hi")]


def test_a_handled_question_still_waited_on_is_asked_again():
    q = history(1, "#a")
    assert to_replay([(1, q)], 1, {1: q}.get) == [q]


def test_a_handled_question_answered_already_is_not_asked_again():
    q = history(1, "#a")
    assert to_replay([(1, q)], 1, lambda cid: None) == []


def test_an_answered_question_is_not_asked_again_while_its_client_waits_on_a_later_one():
    # The client got the first answer and asked again: the first question's answer, asked
    # again, would come first and be taken for the second's.
    first, second = history(1, "#a"), history(1, "#a")
    unacked = [(1, first), (2, second)]
    assert to_replay(unacked, 2, {1: second}.get) == [second]
    assert to_replay(unacked, 1, {1: second}.get) == [second]


def test_a_question_is_matched_by_identity_not_by_its_words():
    first, second = history(1, "#a"), history(1, "#a")
    assert first == second
    assert to_replay([(1, first)], 1, {1: second}.get) == []


def test_another_clients_wait_does_not_keep_a_question():
    q1, q2 = history(1, "#a"), history(2, "#a")
    assert to_replay([(1, q1), (2, q2)], 2, {2: q2}.get) == [q2]
