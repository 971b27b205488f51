"""`healthcheck`: exit 0 when this container's process answers /healthz (Docker's HEALTHCHECK)."""

from __future__ import annotations

import argparse
import ssl
import sys
import urllib.error
import urllib.request

from scoreboard.config import Settings

TIMEOUT_SECONDS = 2.0
_EVERY_INTERFACE = ("0.0.0.0", "::")
_DIRECT = urllib.request.ProxyHandler({})  # never through an HTTP(S)_PROXY of the environment


def add_parser(commands: argparse._SubParsersAction) -> None:
    commands.add_parser(
        "healthcheck",
        help="exit 0 when the web node on PORT, or the worker on METRICS_PORT, answers /healthz",
    ).set_defaults(run=run)


def health_urls(settings: Settings) -> list[str]:
    """Where this machine's web node (PORT) or worker (METRICS_PORT) answers /healthz.

    One image runs either process, with the same settings: whichever answers is the one here.
    """
    host = settings.host or "127.0.0.1"
    if host in _EVERY_INTERFACE:
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    web_scheme = "http" if settings.tls_cert_file is None else "https"
    urls = [f"{web_scheme}://{host}:{settings.port}/healthz"]
    if settings.metrics_port != 0:
        # The worker's port listens on every interface, in plain HTTP.
        urls.append(f"http://127.0.0.1:{settings.metrics_port}/healthz")
    return urls


def run(args: argparse.Namespace, settings: Settings) -> int:
    # The certificate names the public host, not this loopback address: it is not checked here.
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    opener = urllib.request.build_opener(_DIRECT, urllib.request.HTTPSHandler(context=unverified))
    failures = []
    for url in health_urls(settings):
        try:
            with opener.open(url, timeout=TIMEOUT_SECONDS) as response:
                if response.status == 200:
                    print(f"healthy: {url}")
                    return 0
                failures.append(f"{url}: {response.status}")
        except (urllib.error.URLError, OSError) as exc:
            failures.append(f"{url}: {getattr(exc, 'reason', exc)}")
    print("unhealthy: " + "; ".join(failures), file=sys.stderr)
    return 1
