"""Uploaded media, and the signed URLs through which a client PUTs it, as object storage does.

The current upload route answers with a presigned URL. Storage behind such a URL knows
nothing of API keys: it checks the signature, the expiry, the Content-Type that was signed
and the declared size, and refuses a request that also carries an Authorization header.
Emulating those checks makes a client's upload code fail here the way it would fail
against the real bucket, instead of passing against a lenient stand-in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import urlencode


@dataclass(frozen=True)
class Ticket:
    token: str
    filename: str
    size: int
    content_type: str
    expires: int
    """Unix time, as in a real presigned URL: the PUT may come from another machine's clock."""


@dataclass(frozen=True)
class Stored:
    filename: str
    data: bytes
    stored: float
    """Server monotonic time of the upload: eviction counts from here."""


class PutRefused(Exception):
    """A PUT that storage refuses; ``code`` is the storage error code sent back in the XML body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class UploadStore:
    """Tickets waiting for their PUT and the files already stored, each kept in arrival order
    so that eviction only ever looks at the oldest entries."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secret = secrets.token_bytes(32)
        self._tickets: OrderedDict[str, Ticket] = OrderedDict()
        self._files: OrderedDict[str, Stored] = OrderedDict()

    def _signature(self, token: str, expires: int, content_type: str, size: int) -> str:
        message = f"PUT\n{token}\n{expires}\n{content_type}\n{size}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def issue(self, token: str, filename: str, size: int, content_type: str, expires: int) -> str:
        """Remember a ticket; returns the query string that signs its PUT URL."""
        ticket = Ticket(token, filename, size, content_type, expires)
        with self._lock:
            self._tickets[token] = ticket
        signature = self._signature(token, expires, content_type, size)
        return urlencode({"expires": expires, "signature": signature})

    def accept_put(
        self, token: str, expires: str, signature: str, content_type: str, data: bytes,
        now: float, wall: float,
    ) -> Stored:
        """Store a PUT's body if its URL and headers match what was signed; else raise PutRefused."""
        with self._lock:
            ticket = self._tickets.get(token)
        if ticket is None:
            raise PutRefused(403, "AccessDenied", "Request has expired")  # swept, or never issued
        expected = self._signature(token, ticket.expires, ticket.content_type, ticket.size)
        if expires != str(ticket.expires) or not hmac.compare_digest(signature, expected):
            raise PutRefused(403, "SignatureDoesNotMatch",
                             "The request signature we calculated does not match the signature you provided.")
        if wall >= ticket.expires:
            raise PutRefused(403, "AccessDenied", "Request has expired")
        if content_type != ticket.content_type:
            raise PutRefused(403, "SignatureDoesNotMatch",
                             "The request signature we calculated does not match the signature you "
                             f"provided: the URL was signed for Content-Type {ticket.content_type!r}, "
                             f"the request sent {content_type!r}.")
        if len(data) != ticket.size:
            code = "IncompleteBody" if len(data) < ticket.size else "EntityTooLarge"
            raise PutRefused(400, code, f"The body holds {len(data)} bytes; the upload was signed for "
                                        f"{ticket.size}.")
        return self.store(token, ticket.filename, data, now)

    def store(self, token: str, filename: str, data: bytes, now: float) -> Stored:
        stored = Stored(filename, data, now)
        with self._lock:
            self._files[token] = stored
            self._files.move_to_end(token)  # a second PUT to the same URL replaces the file
        return stored

    def get(self, token: str) -> bytes | None:
        with self._lock:
            stored = self._files.get(token)
        return None if stored is None else stored.data

    def sweep(self, now: float, wall: float, ttl: float) -> int:
        """Forget expired tickets and files older than ``ttl``; returns how many went."""
        gone = 0
        with self._lock:
            while self._tickets:
                oldest = next(iter(self._tickets.values()))
                if wall < oldest.expires:
                    break
                self._tickets.popitem(last=False)
                gone += 1
            while self._files:
                first = next(iter(self._files.values()))
                if now - first.stored < ttl:
                    break
                self._files.popitem(last=False)
                gone += 1
        return gone

    def clear(self) -> None:
        with self._lock:
            self._tickets.clear()
            self._files.clear()

    def sizes(self) -> tuple[int, int]:
        """(tickets, files) held now: what a long-run test watches to see memory stay bounded."""
        with self._lock:
            return len(self._tickets), len(self._files)
