"""What a worker does with each item from the hub: one table, opcode -> function.

The functions live by what they do:
- workers/replica_events.py: events applied to the replica, with the lines they write to local clients;
- workers/delivery.py: relayed messages (the hot path);
- workers/answers.py: the hub's answers to one client;
- workers/link_upkeep.py: the link's own upkeep (a new hub's state, acks).
"""
from __future__ import annotations

from typing import Callable

from chatstate.state import (E_ACCOUNT, E_AWAY, E_CHGHOST, E_CONNECTIONS, E_INVITE, E_JOIN, E_KICK, E_LOGIN, E_MODE, E_NICK,
                             E_PART, E_QUIT, E_RENAME, E_RESTORE, E_SETNAME, E_TOPIC, E_UMODE, E_USER)
from ipc import link
from workers.answers import (on_answered, on_barrier, on_fail, on_history, on_idle_ask, on_idle_tell, on_markread,
                             on_nick_refused, on_numeric, on_refuse)
from workers.delivery import on_echo, on_redact, on_user_message, on_wallops
from workers.handlers.accounts import on_account_register, on_login as on_login_answer, on_login_check
from workers.handlers.nickserv import on_service
from workers.link_upkeep import on_ack, on_at, on_handled, on_sync
from workers.replica_events import (on_account, on_away, on_chghost, on_connections, on_invite, on_join, on_kick, on_login, on_mode,
                                    on_nick, on_part, on_quit, on_rename, on_restore, on_setname, on_topic, on_user,
                                    on_user_mode)

__all__ = ["HANDLERS"]


# D_CHANMSG is not here: Worker._on_hub_items gathers runs of them for deliver_channel_run.
HANDLERS: dict[str, Callable[..., None]] = {
    E_USER: on_user,
    E_NICK: on_nick,
    E_JOIN: on_join,
    E_PART: on_part,
    E_KICK: on_kick,
    E_QUIT: on_quit,
    E_TOPIC: on_topic,
    E_MODE: on_mode,
    E_UMODE: on_user_mode,
    E_INVITE: on_invite,
    E_AWAY: on_away,
    E_SETNAME: on_setname,
    E_CHGHOST: on_chghost,
    E_RENAME: on_rename,
    E_CONNECTIONS: on_connections,
    E_RESTORE: on_restore,
    E_ACCOUNT: on_account,
    E_LOGIN: on_login,
    link.D_LOGIN: on_login_answer,
    link.D_ACCOUNT_REGISTER: on_account_register,
    link.D_LOGIN_CHECK: on_login_check,
    link.D_SERVICE: on_service,
    link.D_USERMSG: on_user_message,
    link.D_ECHO: on_echo,
    link.D_WALLOPS: on_wallops,
    link.D_REDACT: on_redact,
    link.D_NUMERIC: on_numeric,
    link.D_FAIL: on_fail,
    link.D_BARRIER: on_barrier,
    link.D_NICK_REFUSED: on_nick_refused,
    link.D_HISTORY: on_history,
    link.D_MARKREAD: on_markread,
    link.D_ANSWERED: on_answered,
    link.D_SYNC: on_sync,
    link.D_AT: on_at,
    link.D_REFUSE: on_refuse,
    link.D_ACK: on_ack,
    link.D_HANDLED: on_handled,
    link.F_IDLE_ASK: on_idle_ask,
    link.F_IDLE_TELL: on_idle_tell,
}
