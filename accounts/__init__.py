"""Accounts, sans-I/O: password hashes and SCRAM keys (`credentials`, slow: off the event loop),
the rules for account names, passwords, emails and the `draft/account-registration` capability
(`names`), and a login throttle (`throttle`). The SASL exchange itself is `ircproto.sasl`.

Nothing here touches a socket, a process, the store or the event loop; the hub, the workers and
the store use these pieces.
"""
