"""The settings schema: one frozen dataclass per section, each field with its help text.

A field's metadata feeds every other surface: the TOML key is `section.field`, the environment
variable is HUBCHAT_<SECTION>_<FIELD>, `flag` (when present) names the `python -m hub` option,
and `check` returns an error message for an invalid value.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Callable, Mapping


def setting(default: Any, help: str, *, flag: str | None = None,
            check: Callable[[Any], str | None] | None = None) -> Any:
    return field(default=default, metadata={"help": help, "flag": flag, "check": check})


def at_least(low: int) -> Callable[[int], str | None]:
    return lambda v: None if v >= low else f"must be at least {low}"


def port_number(v: int) -> str | None:
    return None if 0 <= v <= 65535 else "must be a port number from 0 to 65535"


def server_name(v: str) -> str | None:
    ok = v and " " not in v and "." in v and all(c.isalnum() or c in ".-" for c in v)
    return None if ok else "must look like a host name with a dot, e.g. irc.example.org"


def one_word(v: str) -> str | None:
    return None if v and not any(c in v for c in " ,\r\n\x00") else "must be one word"


def sync_mode(v: str) -> str | None:
    return None if v in ("normal", "full") else "must be normal or full"


def event_loop(v: str) -> str | None:
    if v not in ("auto", "asyncio", "uvloop"):
        return "must be auto, asyncio or uvloop"
    if v == "uvloop":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            return "uvloop is not installed (pip install uvloop)"
    return None


def duration(v: int) -> str | None:
    return None if v >= 0 else "must be a number of seconds, 0 or more"


def positive_seconds(v: float) -> str | None:
    return None if 0 < v <= 10 else "must be more than 0 and at most 10 seconds"


def log_level(v: str) -> str | None:
    return None if v.upper() in ("DEBUG", "INFO", "WARNING", "ERROR") else "must be debug, info, warning or error"


@dataclass(frozen=True)
class ServerSection:
    name: str = setting("hubchat.local", "Server name: the source clients see on server replies.",
                        flag="--name", check=server_name)
    network: str = setting("hubchat", "Network name (NETWORK in ISUPPORT, and the welcome line).", check=one_word)
    host: str = setting("127.0.0.1", "Address to listen on. Loopback by default; exposing the server is a choice.",
                        flag="--host")
    port: int = setting(6667, "TCP port for plain IRC. 0 picks a free port (printed at start).",
                        flag="--port", check=port_number)
    workers: int = setting(0, "Worker processes serving clients; 0 means one per CPU.",
                           flag="--workers", check=at_least(0))
    tls_port: int = setting(6697, "TCP port for IRC over TLS, used when tls_cert and tls_key are set. "
                                  "0 picks a free port.", flag="--tls-port", check=port_number)
    tls_cert: str = setting("", "PEM certificate chain for the TLS listener; empty means no TLS. "
                                "SIGHUP re-reads it.", flag="--tls-cert")
    tls_key: str = setting("", "PEM private key for tls_cert.", flag="--tls-key")
    password: str = setting("", "Server password clients must send with PASS; empty means none.")
    admin: str = setting("", "Who runs this server and how to reach them (ADMIN); empty shows the network name.")
    motd: str = setting("Welcome to hubchat.\nBe kind.", "Message of the day; empty sends 422 (no MOTD).")
    flood_control: bool = setting(True, "Throttle clients that send too fast. Turn off only for trusted load tests "
                                        "(python -m hub --no-flood-control).")
    hang_timeout: int = setting(30, "Seconds a hub or worker may go without stamping its heartbeat (once a second "
                                    "from its event loop) before the supervisor kills and restarts it.",
                                check=at_least(2))
    event_loop: str = setting("auto", "Event loop for the hub and workers: uvloop (about half the latency under "
                                      "load), asyncio, or auto: uvloop when it is installed.",
                              flag="--event-loop", check=event_loop)
    log_level: str = setting("info", "Log level on stderr: debug, info, warning or error.",
                             flag="--log-level", check=log_level)
    data_dir: str = setting("hubchat-data", "Directory for the server's database (history, channel state), "
                                            "relative to the working directory; created at start.",
                            flag="--data-dir")


@dataclass(frozen=True)
class LimitsSection:
    nicklen: int = setting(30, "Longest nickname, in characters (NICKLEN).", check=at_least(1))
    channellen: int = setting(64, "Longest channel name, in bytes (CHANNELLEN).", check=at_least(2))
    topiclen: int = setting(390, "Longest topic, in bytes (TOPICLEN); longer topics are cut.", check=at_least(1))
    chanlimit: int = setting(50, "Channels one client may be in at once (CHANLIMIT).", check=at_least(1))
    maxtargets: int = setting(4, "Targets in one PRIVMSG or NOTICE (TARGMAX).", check=at_least(1))
    sendq: int = setting(98304, "Bytes of output queued for a client before it is dropped with "
                                "'SendQ exceeded'.", check=at_least(4096))
    registration_timeout: int = setting(60, "Seconds a new connection has to finish registering.",
                                        check=at_least(1))
    ping_interval: int = setting(90, "Seconds of silence from a client before the server sends PING.",
                                 check=at_least(1))
    ping_timeout: int = setting(60, "Seconds to wait for any reply to that PING before dropping the client.",
                                check=at_least(1))
    max_clients: int = setting(60000, "Connections the whole server accepts at once; more are refused.",
                               check=at_least(1))
    max_clients_per_ip: int = setting(64, "Connections one IP address may hold at once.", check=at_least(1))
    exempt_loopback: bool = setting(True, "Loopback addresses (127.0.0.0/8, ::1) skip the per-address limit, "
                                          "so local load tests and bridges are not refused.")
    max_commands_before_registration: int = setting(64, "Lines a connection may send before it has registered.",
                                                     check=at_least(4))
    flood_burst: int = setting(10, "Flood control: lines a client may send at once before being slowed.",
                               check=at_least(1))
    flood_rate: int = setting(4, "Flood control: lines per second a client may send after the burst.",
                              check=at_least(1))


@dataclass(frozen=True)
class HistorySection:
    enabled: bool = setting(True, "Keep history (CHATHISTORY, search) and channel state across restarts in "
                                  "server.data_dir (python -m hub --no-history turns it off).")
    max_age: int = setting(30 * 86400, "Seconds a message is kept (default 30 days); 0 keeps it forever.",
                           check=duration)
    max_per_target: int = setting(0, "Messages kept per channel or private conversation; 0 means no limit.",
                                  check=duration)
    commit_interval: float = setting(0.02, "Seconds between commits to disk: what SIGKILL of every process "
                                           "may lose at most (a power cut: see docs/operations.md).",
                                     check=positive_seconds)
    search: bool = setting(True, "Index the words of messages for SEARCH (soju.im/search). Off, SEARCH is not "
                                 "offered and each stored message costs about a quarter less CPU; turned on "
                                 "again, what was stored meanwhile is indexed at start (docs/performance.md).")
    max_query: int = setting(100, "Most messages one CHATHISTORY or SEARCH answer holds (CHATHISTORY in "
                                   "ISUPPORT).", check=at_least(1))
    synchronous: str = setting("normal", "SQLite's synchronous mode: normal (a commit is not fsynced; a power "
                                         "cut may lose the commits since the last checkpoint) or full (every "
                                         "commit is fsynced).", check=sync_mode)


@dataclass(frozen=True)
class AccountsSection:
    registration_enabled: bool = setting(True, "Clients may register accounts with REGISTER "
                                               "(draft/account-registration). Accounts need history on.")
    registration_before_connect: bool = setting(False, "REGISTER is accepted before connection registration "
                                                       "(NICK and USER) is complete.")
    registration_requires_email: bool = setting(False, "REGISTER must give an email address.")
    allow_plaintext: bool = setting(False, "SASL PLAIN (and PASS account:password, REGISTER and NickServ) over a "
                                           "connection that is neither TLS nor from loopback, where the password "
                                           "crosses the network readable. SCRAM-SHA-256 never sends it and is "
                                           "always allowed.")
    login_attempts: int = setting(3, "Failed logins allowed per minute for each account and each address "
                                     "(loopback included) before further attempts are refused.",
                                  check=at_least(1))


def origins(v: str) -> str | None:
    for origin in v.replace(",", " ").split():
        if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
            return f"{origin!r} is not an origin: scheme://host[:port], or *"
    return None


@dataclass(frozen=True)
class WebSection:
    enabled: bool = setting(True, "Serve HTTP: the web client, IRC over WebSocket, /metrics and /healthz "
                                  "(python -m hub --no-web turns it off).")
    host: str = setting("127.0.0.1", "Address of the HTTP listener. Loopback by default, like every listener.")
    port: int = setting(8080, "TCP port of the HTTP listener (HTTPS with server.tls_cert and tls_key). "
                              "0 picks a free port (printed at start).", flag="--web-port", check=port_number)
    allowed_origins: str = setting("", "Origins whose pages may open a WebSocket, separated by spaces or "
                                       "commas (e.g. \"https://chat.example.org\"), or *. Empty: the page's own "
                                       "origin and loopback ones. A connection with no Origin (not a browser) "
                                       "is always allowed.", check=origins)
    ping_interval: int = setting(30, "Seconds of silence from a WebSocket client before the server sends a "
                                     "WebSocket ping; one more interval without an answer closes it.",
                                 check=at_least(1))
    request_timeout: int = setting(10, "Seconds an HTTP connection may take to send a whole request head, and "
                                       "may stay open idle between requests.", check=at_least(1))


def redis_url(v: str) -> str | None:
    if v and not re.fullmatch(r"redis://[^/\s:]+(:\d+)?(/\d+)?", v):
        return "must be empty (one host) or redis://HOST:PORT/DB"
    return None


def lease_seconds(v: float) -> str | None:
    return None if 0.5 <= v <= 300 else "must be from 0.5 to 300 seconds"


def _hostname() -> str:
    import socket
    return socket.gethostname() or "localhost"


@dataclass(frozen=True)
class ClusterSection:
    redis_url: str = setting("", "Several hosts as one network: the Redis server (redis://HOST:PORT/DB) whose "
                                 "stream is their shared log. Empty: this host alone, and no Redis at all.",
                             flag="--cluster", check=redis_url)
    host_id: str = setting("", "This host's name in the cluster; empty means the machine's hostname. Must be "
                               "unique: a host whose id another live host holds stops at start.",
                           flag="--host-id", check=lambda v: None if not v else one_word(v))
    lease: float = setting(10.0, "Seconds a host may go silent (dead, or cut off from Redis) before the other "
                                 "hosts quit its users and free their nicks.", flag="--cluster-lease",
                           check=lease_seconds)

    @property
    def host_name(self) -> str:
        return self.host_id or _hostname()


@dataclass(frozen=True)
class Config:
    server: ServerSection = field(default_factory=ServerSection)
    limits: LimitsSection = field(default_factory=LimitsSection)
    history: HistorySection = field(default_factory=HistorySection)
    accounts: AccountsSection = field(default_factory=AccountsSection)
    web: WebSection = field(default_factory=WebSection)
    cluster: ClusterSection = field(default_factory=ClusterSection)
    # [operators] in the TOML file: name = "scrypt$..." (python -m hub --hash-password); never plain text.
    operators: Mapping[str, str] = field(default_factory=dict)


def sections() -> list[tuple[str, type]]:
    """The sections made of fixed settings (operators is a table of names instead)."""
    return [(f.name, f.default_factory) for f in fields(Config) if is_dataclass(f.default_factory)]  # type: ignore
