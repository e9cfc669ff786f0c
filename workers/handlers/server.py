"""Server queries answered from the worker's copy of the state: MOTD, LUSERS."""
from ircproto.message import Message
from workers import replies
from workers.session import Session


def motd(s: Session, msg: Message) -> None:
    replies.motd(s)


def lusers(s: Session, msg: Message) -> None:
    replies.lusers(s)
