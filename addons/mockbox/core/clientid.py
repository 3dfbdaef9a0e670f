"""Who is asking: the identity a request is rate-limited under.

In order: the API key header, then a bearer token (both only as a SHA-256 prefix, never raw),
then the client address. A forwarding header (X-Forwarded-For or Forwarded) is believed only
when the connection comes from a configured trusted proxy network, so a client cannot choose
its own identity by sending one. Keys are not checked, so a client can choose its key: every
identity also carries the address's (`home`), which rate limiting counts as well.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

type IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
type IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

FORWARDED_HEADERS = ("X-Forwarded-For", "Forwarded")
KEY_HASH_LENGTH = 16  # hex digits of SHA-256: 64 bits, ample to keep clients apart
_HEX_KEY = re.compile(f"[0-9a-f]{{{KEY_HASH_LENGTH}}}")


class IdentityConfigError(ValueError):
    pass


def key_identity(secret: str) -> str:
    """The identity of an API key or token: a hash prefix, so the secret is never stored.
    The same as `printf %s "$KEY" | sha256sum | cut -c1-16`."""
    return "key:" + hashlib.sha256(secret.encode()).hexdigest()[:KEY_HASH_LENGTH]


@dataclass(frozen=True, slots=True)
class Client:
    identity: str  # "key:<hash>" or "ip:<address>"
    address: IPAddress | None  # the client's address after believing trusted proxies
    home: str  # "ip:<address>": the identity without a key

    @property
    def keyed(self) -> bool:
        return self.identity != self.home


def parse_network(text: str, where: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise IdentityConfigError(
            f"{where}: {text!r} is not an IP address or network (like 10.0.0.0/8)"
        ) from None


class ClientIdentifier:
    def __init__(
        self,
        api_key_header: str = "X-API-Key",
        bearer: bool = True,
        trusted_proxies: Iterable[IPNetwork] = (),
        forwarded_header: str = "X-Forwarded-For",
    ) -> None:
        canonical = {h.lower(): h for h in FORWARDED_HEADERS}
        if forwarded_header.lower() not in canonical:
            raise IdentityConfigError(
                f"identity.forwarded_header: expected one of {', '.join(FORWARDED_HEADERS)}, "
                f"got {forwarded_header!r}"
            )
        self.api_key_header = api_key_header.strip()
        self.bearer = bearer
        self.trusted = tuple(trusted_proxies)
        self.forwarded_header = canonical[forwarded_header.lower()]

    def identify(self, peer: str, headers: Mapping[str, str]) -> Client:
        address = self.address(peer, headers)
        home = f"ip:{address if address is not None else peer}"
        secret = self._secret(headers)
        return Client(key_identity(secret) if secret else home, address, home)

    def _secret(self, headers: Mapping[str, str]) -> str:
        if self.api_key_header:
            key = headers.get(self.api_key_header, "").strip()
            if key:
                return key
        if self.bearer:
            scheme, _, token = headers.get("Authorization", "").strip().partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
        return ""

    def address(self, peer: str, headers: Mapping[str, str]) -> IPAddress | None:
        """The client address: the peer, or, when the peer is a trusted proxy, the right-most
        address in the forwarding header that is not itself a trusted proxy."""
        current = parse_address(peer)
        if current is None or not self._trusted(current):
            return current
        value = headers.get(self.forwarded_header, "")
        hops = _forwarded_for(value) if self.forwarded_header == "Forwarded" else value.split(",")
        for hop in reversed(hops):
            address = parse_address(hop)
            if address is None:
                # "unknown", an obfuscated name or garbage: the client behind this hop is not
                # known, so the last trusted proxy stands for it (never a client-chosen value).
                return current
            current = address
            if not self._trusted(current):
                return current
        return current

    def _trusted(self, address: IPAddress) -> bool:
        return any(address in net for net in self.trusted)


@lru_cache(maxsize=4096)  # the same few addresses come again and again
def parse_address(text: str) -> IPAddress | None:
    """An address as proxies write it: `1.2.3.4`, `1.2.3.4:80`, `[2001:db8::1]:80`, `::1`."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _forwarded_for(value: str) -> list[str]:
    """The `for=` values of an RFC 7239 Forwarded header, first hop first."""
    hops = []
    for element in value.split(","):
        for pair in element.split(";"):
            name, _, given = pair.strip().partition("=")
            if name.lower() == "for":
                hops.append(given)
    return hops


@dataclass(frozen=True, slots=True)
class Exemptions:
    """Clients that are never limited: networks, and API-key identities (`key:<hash>`)."""

    networks: tuple[IPNetwork, ...] = ()
    identities: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, entries: object, where: str) -> Exemptions:
        if not isinstance(entries, list):
            raise IdentityConfigError(f"{where}: expected a list of addresses, networks or key:...")
        networks: list[IPNetwork] = []
        identities: set[str] = set()
        for i, entry in enumerate(entries):
            text = str(entry).strip()
            if text.startswith("key:"):
                digest = text[4:]
                if not _HEX_KEY.fullmatch(digest):
                    raise IdentityConfigError(
                        f"{where}[{i}]: {text!r}: a key identity is 'key:' and the first "
                        f"{KEY_HASH_LENGTH} hex digits of the key's SHA-256"
                    )
                identities.add(text)
            else:
                networks.append(parse_network(text, f"{where}[{i}]"))
        return cls(tuple(networks), frozenset(identities))

    def covers(self, client: Client) -> bool:
        if client.identity in self.identities:
            return True
        address = client.address
        return address is not None and any(address in net for net in self.networks)
