"""The TLS listener's context, built from the configured certificate and key."""
from __future__ import annotations

import logging
import ssl

from config.client_certs import request_client_certificates
from config.loader import ConfigError
from config.schema import Config


def tls_enabled(config: Config) -> bool:
    return bool(config.server.tls_cert and config.server.tls_key)


def server_context(config: Config) -> ssl.SSLContext | None:
    """A server context, or None without TLS; ConfigError names the setting that is wrong."""
    if not tls_enabled(config):
        if config.server.tls_cert or config.server.tls_key:
            raise ConfigError("server.tls_cert and server.tls_key: set both, or neither")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(config.server.tls_cert, config.server.tls_key)
    except FileNotFoundError as exc:
        raise ConfigError(f"server.tls_cert/server.tls_key: no such file: {exc.filename}") from None
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"server.tls_cert/server.tls_key: cannot load the certificate and key: {exc}") from None
    problem = request_client_certificates(context)  # for SASL EXTERNAL: any certificate, none required
    if problem is not None:
        logging.getLogger("hubchat.tls").warning("%s", problem)
    return context
