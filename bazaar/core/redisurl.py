"""Redis addresses with failover: ``sentinel://host:port[,host:port...]/<service>[/<db>]``.

A plain ``redis://`` URL names one server. A ``sentinel://`` URL names the Redis Sentinels that watch a primary
(the *service*, Sentinel's "master name") and its replicas; clients ask a sentinel where the primary is and ask
again whenever a connection to it fails, so a failover is followed without restarting anything. This module only
parses (the settings import it before Django is set up); the clients live in core.cache.backends and Celery.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote


class BadRedisUrl(ValueError):
    pass


@dataclass(frozen=True)
class SentinelUrl:
    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    password: str | None = None

    def kombu_url(self) -> str:
        """The same address as kombu's Redis transport and Celery's result backend spell it (``master_name`` goes
        in the transport options): ``sentinel://h1:p1/db;sentinel://h2:p2/db``."""
        auth = f":{self.password}@" if self.password else ""
        return ";".join(f"sentinel://{auth}{h}:{p}/{self.db}" for h, p in self.sentinels)


def is_sentinel(url: str) -> bool:
    return url.startswith("sentinel://")


def parse_sentinel(url: str) -> SentinelUrl:
    """``sentinel://[:password@]h1:p1,h2:p2/service/db`` -> SentinelUrl; BadRedisUrl with the reason otherwise."""
    if not is_sentinel(url):
        raise BadRedisUrl(f"not a sentinel:// URL: {url!r}")
    rest = url[len("sentinel://") :]
    password = None
    if "@" in rest:
        auth, rest = rest.rsplit("@", 1)
        password = unquote(auth.split(":", 1)[1] if ":" in auth else auth) or None
    hosts, _, path = rest.partition("/")
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise BadRedisUrl("a sentinel:// URL needs the service name: sentinel://host:port/<service>[/<db>]")
    if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
        raise BadRedisUrl(f"expected /<service>[/<db>] after the sentinels, got /{path}")
    sentinels = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise BadRedisUrl(f"sentinel address {item!r} is not host:port")
        sentinels.append((host.strip("[]"), int(port)))
    return SentinelUrl(tuple(sentinels), parts[0], int(parts[1]) if len(parts) == 2 else 0, password)
