"""How a worker writes one frame from the hub to its clients: runs of channel messages are
batched per member, yet every member sees exactly the hub's order, never its own lines (unless
it asked for echo-message), and each tag variant is rendered for those who asked."""
import asyncio

from ipc import link
from chatstate.state import E_JOIN, E_PART, E_USER, State
from ircproto.message import parse
from workers.session import REGISTERED, TAG_MSGID, TAG_TIME, Outbox
from workers.worker import RecentIds, Worker

WID = 1
A, B, C, E = (WID << 32 | n for n in (1, 2, 3, 4))
D = 2 << 32 | 1  # on another worker


class FakeSession:
    def __init__(self, cid, tag_mode=0, caps=()):
        self.cid, self.tag_mode, self.caps = cid, tag_mode, set(caps)
        self.outbuf, self.phase, self.label = [], REGISTERED, None

    def write(self, data):
        self.outbuf.append(data)

    reply = write

    def lines(self):
        return [parse(line) for line in b"".join(self.outbuf).split(b"\r\n") if line]


def worker_with(sessions):
    w = Worker.__new__(Worker)
    w.wid, w.sessions, w.state = WID, sessions, State()
    w.delivered_ids, w.outbox, w._flush_scheduled = RecentIds(1000), Outbox(), False
    for cid, nick in ((A, "a"), (B, "b"), (C, "c"), (D, "d"), (E, "e")):
        w.state.apply((E_USER, cid, nick, "~u", "h", nick, 1.0))
        w.state.apply((E_JOIN, cid, "#room", 1.0))
    return w


def msg(sender, nick, text, n, flags=0):
    line = f":{nick}!~u@h PRIVMSG #room :{text}\r\n".encode()
    return (link.D_CHANMSG, "#room", sender, line, f"id{n}", 1700000000.5, flags, "")


def run_frame(w, items):
    async def go():
        w._on_hub_items(items)
    asyncio.run(go())


def test_a_frame_is_delivered_in_hub_order_to_every_kind_of_member():
    plain, sender, tagged, echoing = FakeSession(A), FakeSession(B), FakeSession(C, TAG_TIME | TAG_MSGID), \
        FakeSession(E)
    w = worker_with({A: plain, B: sender, C: tagged, E: echoing})
    run_frame(w, [msg(B, "b", "one", 1), msg(D, "d", "two", 2), msg(E, "e", "mine", 3, link.MSG_ECHO),
                  (E_PART, A, "#room", "bye"), msg(D, "d", "three", 4)])
    seen = {name: [(m.command, m.params[-1]) for m in s.lines()]
            for name, s in (("plain", plain), ("sender", sender), ("tagged", tagged), ("echoing", echoing))}
    assert seen["plain"] == [("PRIVMSG", "one"), ("PRIVMSG", "two"), ("PRIVMSG", "mine"), ("PART", "bye")]
    assert seen["sender"] == [("PRIVMSG", "two"), ("PRIVMSG", "mine"), ("PART", "bye"), ("PRIVMSG", "three")]
    assert seen["echoing"] == [("PRIVMSG", "one"), ("PRIVMSG", "two"), ("PRIVMSG", "mine"), ("PART", "bye"),
                               ("PRIVMSG", "three")]
    assert seen["tagged"] == seen["echoing"]
    tags = [m.tags for m in tagged.lines() if m.command == "PRIVMSG"]
    assert [t["msgid"] for t in tags] == ["id1", "id2", "id3", "id4"]
    assert tags[0]["time"] == "2023-11-14T22:13:20.500Z"
    assert w.deliveries == sum(len([m for m in s.lines() if m.command == "PRIVMSG"])
                               for s in (plain, sender, tagged, echoing))  # what /metrics counts


def test_a_replayed_message_in_a_run_is_written_once():
    plain = FakeSession(A)
    w = worker_with({A: plain})
    run_frame(w, [msg(D, "d", "x", 1), msg(D, "d", "x", 1), msg(D, "d", "y", 2)])
    run_frame(w, [msg(D, "d", "y", 2)])
    assert [m.params[-1] for m in plain.lines()] == ["x", "y"]
