"""Ask TLS clients for a certificate, and take any they send: SASL EXTERNAL and NickServ CERT log in
with its SHA-256 fingerprint, not with a chain to a CA (people's certificates are self-signed).

Python's `ssl` cannot say "request, don't verify": CERT_OPTIONAL asks for a certificate but then
has OpenSSL verify it against the loaded CAs, so a self-signed one fails the handshake, and the
module offers no verify callback (ergo, in Go, says `tls.RequestClientCert`). So this installs
one through ctypes on the context's own `SSL_CTX` (`SSL_CTX_set_verify` with a callback that
accepts every certificate; Python keeps an installed callback when its verify mode changes). The
`SSL_CTX` pointer sits right after the object header of an `ssl.SSLContext` in CPython; that is
checked before it is used, by reading the verify mode back through OpenSSL, and anything unexpected
leaves the context as it was (CERT_NONE: no client certificates, EXTERNAL then always fails) with
the reason returned for the log.
"""
from __future__ import annotations

import ctypes
import hashlib
import ssl
import sys

_VERIFY_PEER = 1  # OpenSSL's SSL_VERIFY_PEER (without FAIL_IF_NO_PEER_CERT: a certificate is optional)
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
_accept_any = _CALLBACK(lambda preverify_ok, store: 1)  # kept alive for the life of the process
_libssl = None


def _library():
    global _libssl
    if _libssl is None:
        import _ssl
        lib = ctypes.CDLL(_ssl.__file__)  # its libssl, the very one Python's contexts live in
        lib.SSL_CTX_get_verify_mode.restype = ctypes.c_int
        lib.SSL_CTX_get_verify_mode.argtypes = [ctypes.c_void_p]
        lib.SSL_CTX_set_verify.restype = None
        lib.SSL_CTX_set_verify.argtypes = [ctypes.c_void_p, ctypes.c_int, _CALLBACK]
        _libssl = lib
    return _libssl


def request_client_certificates(context: ssl.SSLContext) -> str | None:
    """Make a server context ask for a client certificate and accept any; None when it does, else
    why not (the context is then left not asking)."""
    try:
        if sys.implementation.name != "cpython":  # the layout read below is CPython's own
            raise OSError(f"{sys.implementation.name} keeps its SSL_CTX elsewhere")
        lib = _library()
        context.verify_mode = ssl.CERT_OPTIONAL
        pointer = ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value
        if not pointer or lib.SSL_CTX_get_verify_mode(pointer) != _VERIFY_PEER:
            raise OSError("the SSL_CTX of the context was not where CPython keeps it")
        lib.SSL_CTX_set_verify(pointer, _VERIFY_PEER, _accept_any)
        return None
    except (OSError, AttributeError, ValueError) as exc:
        context.verify_mode = ssl.CERT_NONE
        return f"TLS client certificates are not requested (SASL EXTERNAL cannot work): {exc}"


def fingerprint_of(transport) -> str | None:
    """The SHA-256 fingerprint (64 lowercase hex digits) of the certificate the TLS client sent,
    or None (no TLS, or no certificate)."""
    ssl_object = transport.get_extra_info("ssl_object") if hasattr(transport, "get_extra_info") else None
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return hashlib.sha256(der).hexdigest() if der else None
