"""Server text made fit for messages and logs: one line, short, and without any credential in it.

A hostile or confused server can echo what it received: the client secret raw, percent-encoded as
in the token request's form, in base64 as in a Basic header, or the bearer token. It can also put
newlines and terminal escapes in its text to forge log lines. Everything a server says passes
through :func:`server_text` (and every URL in a message through ``urls.safe_url``, which uses
:func:`scrub`) before it reaches an exception or a log line.

The registry of credentials is process-wide, like Airflow's secrets masker: the token provider
registers its secret and each token it obtains, and any module can scrub without plumbing.
"""

from __future__ import annotations

import base64
import collections
import json
import re
import threading
from urllib.parse import quote, quote_plus

MAX_SERVER_TEXT = 500
# Credentials shorter than this are not scrubbed: replacing every "abc" would garble messages, and a
# secret that short is no secret.
MIN_LENGTH = 6
_KEEP_TOKENS = 64
_HIDDEN = "***"
# C0/C1 controls, zero-width and bidirectional formatting characters, line and paragraph separators.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]+")
_SPACES = re.compile(r"\s{2,}")

_lock = threading.Lock()
# One compiled pattern per secret (case-insensitive: percent-escapes may come back as %2f for %2F);
# tokens are matched as exact strings, which costs nothing to add (a new token arrives every hour).
_secrets: dict[str, re.Pattern[str]] = {}
_tokens: collections.deque[str] = collections.deque(maxlen=_KEEP_TOKENS)


def spellings(secret: str, client_id: str | None = None) -> set[str]:
    """The ways ``secret`` can appear in text: raw, JSON-escaped, percent- and form-encoded, base64
    (alone and as ``client_id:secret``, plain and form-encoded, as HTTP Basic credentials are)."""
    found = {secret, json.dumps(secret)[1:-1], quote(secret), quote(secret, safe=""), quote_plus(secret)}
    candidates = [secret]
    if client_id:
        candidates += [f"{client_id}:{secret}", f"{quote_plus(client_id)}:{quote_plus(secret)}"]
    for text in candidates:
        encoded = base64.b64encode(text.encode("utf-8")).decode("ascii")
        found |= {encoded, encoded.rstrip("="), encoded.replace("+", "-").replace("/", "_").rstrip("=")}
    return {spelling for spelling in found if len(spelling) >= MIN_LENGTH}


def remember_secret(secret: str, client_id: str | None = None) -> None:
    """From now on, scrub every spelling of ``secret`` (see :func:`spellings`)."""
    key = f"{client_id}\0{secret}"
    with _lock:
        if key in _secrets:
            return
        texts = sorted(spellings(secret, client_id), key=len, reverse=True)
        if texts:
            _secrets[key] = re.compile("|".join(map(re.escape, texts)), re.IGNORECASE)


def remember_token(token: str) -> None:
    """From now on, scrub ``token`` (the latest few dozen tokens are kept)."""
    with _lock:
        if len(token) >= MIN_LENGTH and token not in _tokens:
            _tokens.append(token)


def forget_all() -> None:
    """Drop every registered credential (tests)."""
    with _lock:
        _secrets.clear()
        _tokens.clear()


def scrub(text: str) -> str:
    """``text`` with every registered credential, in any spelling, replaced by ``***``."""
    with _lock:
        patterns, tokens = list(_secrets.values()), list(_tokens)
    for token in tokens:
        if token in text:
            text = text.replace(token, _HIDDEN)
    for pattern in patterns:
        text = pattern.sub(_HIDDEN, text)
    return text


def one_line(text: str) -> str:
    """``text`` without control or formatting characters, its whitespace runs collapsed."""
    return _SPACES.sub(" ", _UNPRINTABLE.sub(" ", text)).strip()


def server_text(value: object, limit: int = MAX_SERVER_TEXT) -> str | None:
    """What a server said, safe to put in a message: scrubbed, on one line, at most ``limit`` chars.

    Scrubbed before and after the characters are cleaned, so a secret split by a control character
    cannot survive by being joined back together. None for a missing or empty value.
    """
    if value is None or value == "":
        return None
    # Cut early (a huge field must not cost a huge regex run), far enough out that a credential cut
    # in half there lies beyond the final cut.
    text = scrub(one_line(scrub(str(value)[: 4 * limit + 1000])))
    return text if len(text) <= limit else text[: limit - 1] + "…"
