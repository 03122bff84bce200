"""Finding secrets in settings, and redacting credentials from URLs in any text.

Settings may name a Prefect Secret block (a key ending ``_block``), never hold a secret.
:func:`find_secrets` walks any nesting of mappings and lists and reports, by dotted key
and never by value:

- **A secret's name.** A key is split into words at ``-``, ``_``, ``.``, spaces and
  camelCase boundaries (``x-api-key``, ``clientSecret``, ``API_KEY``). Its *last* word
  says what the value is, as in English compounds: ``api_token``, ``Authorization``,
  ``db_password``, ``x-api-key``, ``accessToken`` hold secrets, while ``token_count``,
  ``token_url``, ``password_min_length``, ``secret_name`` and ``records_key`` describe
  something else, and so does a name that starts by counting (``max_tokens``). A trailing
  word that only says how the secret is written (``value``, ``string``, ``b64``, ``pem``,
  a digit...) is skipped first, so ``api_key_value`` and ``password2`` are secrets. A bare
  ``key`` is a name, not a secret, except as a URL query parameter. Under a secret name,
  a scalar, a list of scalars or a mapping of scalars is the secret; ``None``, ``""`` and
  booleans (a switch, not a secret) are not, and ``*_block`` keys name a block.
- **Credentials in a URL**, in any string (keys included): a password in the userinfo
  (``https://user:pass@host``), a user that looks like a token (``https://ghp_x1y2...@host``),
  or a query or fragment parameter with a secret's name (``api_key``, ``access_token``,
  ``X-Amz-Signature``...) or one of ``key``, ``sig``.
- **A header value**: a string that is an auth scheme and one token-like word
  (``Bearer abc123``, ``Basic dXNlcjpwYXNz``). A token-like word has no spaces and is
  long, or mixes letters with digits or case; so ``Basic statistics`` is prose.

:func:`redact` rewrites every URL in a text with its userinfo and secret parameter values
replaced by ``***``, and auth header values likewise; :func:`install_log_redaction` applies
it to every log record the process creates, whichever handler (console, Prefect's API)
then writes it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus, urlsplit

MASK = "***"
SECRET_NAMED = "looks like a secret written in settings"
# Secret nouns that may end a longer word too (``dbpassword``, ``accesstoken``).
COMPOUND_NOUNS = ("password", "passwd", "passphrase", "secret", "token", "credential", "apikey")
# Secret nouns that count only as a whole word: ``bypass`` and ``config`` are not secrets.
WORD_NOUNS = frozenset({"pass", "pwd", "auth", "authorization", "bearer", "cookie", "signature",
                        "passcode", "pin", "creds", "sessionid"})  # fmt: skip
# Under these names any value is the secret, however short or numeric (``pin: 1234``).
# Under the others (``token``, ``*_key``, ``signature``) a secret is a string that looks
# like a token (see looks_like_token; ``abc123`` does): ``auth: none``, ``tokens: 4096``,
# ``signature: v4`` and ``session_key: created`` are settings.
STRICT_NOUNS = frozenset({"password", "passwd", "passphrase", "pass", "pwd", "passcode", "pin",
                          "secret", "secrets", "credential", "credentials", "creds"})  # fmt: skip
TOKEN_MIN = 8
# ``page_token``, ``nextToken``: a pagination cursor, not a credential.
CURSORS = frozenset({"page", "next", "continuation", "cursor", "sync", "resume"})
# Two words that make a secret together; a bare ``key`` is a name (``records_key``).
KEY_KINDS = frozenset({"api", "access", "private", "secret", "signing", "encryption", "master",
                       "session", "client", "license", "subscription", "ssh"})  # fmt: skip
# Words that say how a secret is written, not what it is.
NEUTRAL_TAILS = frozenset({"value", "val", "string", "str", "text", "raw", "plain", "literal",
                           "b64", "base64", "hex", "pem", "der", "bytes", "data"})  # fmt: skip
# A name that counts something is not a secret: ``max_tokens``, ``num_keys``.
QUANTIFIERS = frozenset({"max", "min", "num", "number", "n", "count", "total"})
# Query parameters that carry a secret although their name alone says little.
SECRET_PARAMS = frozenset({"key", "sig"})
AUTH_SCHEMES = r"bearer|basic|token|digest|apikey"

WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
# A URL in text; punctuation that ends a sentence is not part of it.
URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]*[^\s'\"<>`.,;:!?)\]}]")
# ``Bearer x``, or a whole header line ``Authorization: Bearer x``
HEADER_VALUE = re.compile(rf"^\s*(?:[\w-]+\s*:\s*)?(?:{AUTH_SCHEMES})\s+(\S+)\s*$", re.IGNORECASE)
HEADER_IN_TEXT = re.compile(rf"\b({AUTH_SCHEMES})(\s+)([A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    """Where a secret was found, and what kind; never the value."""

    key: str
    why: str
    name: str | None = None  # the secret's own key, when its name gave it away


def words(name: str) -> list[str]:
    """``x-api-key`` / ``clientSecret`` / ``API_KEY`` -> lower-case words."""
    return [word.lower() for word in WORD.findall(name)]


def is_secret_name(name: str) -> bool:
    """Whether a key or parameter name says its value is a secret (see the module doc)."""
    parts = words(name)
    while len(parts) > 1 and (parts[-1] in NEUTRAL_TAILS or parts[-1].isdigit()):
        parts.pop()  # api_key_value, password2
    if not parts or parts[0] in QUANTIFIERS or (len(parts) > 1 and parts[-2] in CURSORS):
        return False
    last = parts[-1]
    singular = last[:-1] if last.endswith("s") and last not in WORD_NOUNS else last
    if singular in WORD_NOUNS or singular.endswith(COMPOUND_NOUNS):
        return True
    return singular == "key" and len(parts) > 1 and parts[-2] in KEY_KINDS


def is_strict_name(name: str) -> bool:
    """A password-like name: any value under it is the secret."""
    parts = [p for p in words(name) if p not in NEUTRAL_TAILS and not p.isdigit()]
    return bool(parts) and (parts[-1] in STRICT_NOUNS or parts[-1].endswith(("password", "passwd")))


def looks_like_token(text: str, shortest: int = TOKEN_MIN) -> bool:
    """No spaces, and long, or mixing letters with digits, case or token punctuation
    (``abc.def-ghi``); a plain word is prose (``Basic statistics``)."""
    if len(text) < shortest or any(c.isspace() for c in text):
        return False
    letters = any(c.isalpha() for c in text)
    mixed = any(c.isdigit() for c in text) or (letters and any(c in ".-_~+/=" for c in text))
    cased = any(c.isupper() for c in text[1:]) and any(c.islower() for c in text)
    return len(text) >= 24 or mixed or cased


# Userinfo after any ``//``: with or without a scheme, whatever the port says.
USERINFO = re.compile(r"//([^/\s?#@'\"<>`]+)@")


def userinfo_problem(text: str) -> str | None:
    for match in USERINFO.finditer(text):
        user, colon, password = match.group(1).partition(":")
        if colon and password:
            return "a URL with a password in it (user:password@)"
        if len(user) >= 20 and looks_like_token(user):
            return "a URL with a token as its user (token@)"
    return None


def _params(text: str) -> list[tuple[str, str]]:
    """``name=value`` pairs split at ``&`` and ``;``, names percent-decoded."""
    pairs = []
    for pair in re.split(r"[&;]", text):
        name, _, value = pair.partition("=")
        pairs.append((unquote_plus(name), value))
    return pairs


def _secret_param(name: str) -> bool:
    return name.lower() in SECRET_PARAMS or is_secret_name(name)


def _split(url: str) -> Any:
    try:
        return urlsplit(url)  # a bad port is not looked at: its URL is still read for secrets
    except ValueError:
        return None


def url_problem(url: str) -> str | None:
    """What makes this URL carry a credential, or None."""
    if problem := userinfo_problem(url):
        return problem
    parts = _split(url)
    if parts is None:
        return None
    params = parts.path.partition(";")[2]  # ``/x.csv;api_key=...``
    for where, text in (("path", params), ("query", parts.query), ("fragment", parts.fragment)):
        for name, value in _params(text):
            if value and _secret_param(name):
                return f"a URL whose {where} parameter {redact(name)!r} looks like a secret"
    return None


def text_problem(text: str) -> str | None:
    """What makes this string carry a credential: a URL with one, or a header value."""
    if problem := userinfo_problem(text):
        return problem
    for match in URL.finditer(text):
        if problem := url_problem(match.group()):
            return problem
    header = HEADER_VALUE.match(text)
    if header and looks_like_token(header.group(1)):
        return "an auth header value (scheme and token)"
    return None


def _is_secret_value(value: Any, strict: bool) -> bool:
    if value is None or isinstance(value, bool) or value == "":
        return False
    return strict or (
        isinstance(value, str)
        and (looks_like_token(value, shortest=6) or HEADER_VALUE.match(value) is not None)
    )


def _is_container(value: Any) -> bool:
    return isinstance(value, Mapping | list | tuple)


def _children(node: Any) -> list[tuple[str, Any, Any]]:
    """(shown key, key, value) of a mapping's items or a list's items, in order."""
    if isinstance(node, Mapping):
        return [(redact(str(key)), key, value) for key, value in node.items()]
    return [(str(index), index, value) for index, value in enumerate(node)]


def _leaves(value: Any) -> Iterator[tuple[str, Any]]:
    """(relative key, scalar) under a secret name: mapping keys are shown, list indexes
    are not (the list is the secret), and ``*_block`` keys name blocks."""
    seen: set[int] = set()
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, node = stack.pop()
        if not _is_container(node):
            yield path, node
        elif id(node) not in seen:
            seen.add(id(node))
            mapping = isinstance(node, Mapping)
            items = [
                (f"{path}.{shown}" if mapping else path, item)
                for shown, key, item in _children(node)
                if not str(key).endswith("_block")
            ]
            stack.extend(reversed(items))


def find_secrets(data: Any, prefix: str = "") -> Iterator[Finding]:
    """Every place in ``data`` that holds a secret instead of naming a Secret block.

    Depth first, in document order, each container once and without recursion: YAML
    aliases can share a node many times over, or make it contain itself.
    """
    seen: set[int] = set()
    stack: list[tuple[str, Any, Any]] = [(prefix, None, data)]
    while stack:
        dotted, key, value = stack.pop()
        if isinstance(key, str):
            if problem := text_problem(key):
                yield Finding(dotted, f"a key that is {problem}")
            if is_secret_name(key) and not key.endswith("_block"):
                strict = is_strict_name(key)
                where = next(
                    (sub for sub, leaf in _leaves(value) if _is_secret_value(leaf, strict)), None
                )
                if where is not None:
                    yield Finding(f"{dotted}{where}", SECRET_NAMED, redact(key))
                    continue
        if isinstance(value, str):
            if problem := text_problem(value):
                yield Finding(dotted or "(value)", problem)
        elif _is_container(value) and id(value) not in seen:
            seen.add(id(value))
            children = _children(value)
            stack.extend((f"{dotted}.{shown}" if dotted else shown, k, v)
                         for shown, k, v in reversed(children))  # fmt: skip


def _redact_url(match: re.Match[str]) -> str:
    """The URL as written, with the values of secret-named parameters masked."""
    url = match.group()
    start = re.search(r"[;?#]", url)
    return url[: start.start()] + _redact_params(url[start.start() :]) if start else url


def _redact_params(text: str) -> str:
    """Mask the values of secret-named ``name=value`` pairs, keeping the rest as written."""

    def masked(pair: str) -> str:
        name, equals, value = pair.partition("=")
        if equals and value and _secret_param(unquote_plus(name)):
            return f"{name}={MASK}"
        return pair

    return "".join(
        masked(piece) if index % 2 == 0 else piece
        for index, piece in enumerate(re.split(r"([&;?#])", text))
    )


def _redact_header(match: re.Match[str]) -> str:
    scheme, space, token = match.groups()
    return f"{scheme}{space}{MASK}" if looks_like_token(token) else match.group()


def redact(text: str) -> str:
    """``text`` with credentials in URLs and auth header values replaced by ``***``."""
    if "//" in text:
        text = USERINFO.sub(f"//{MASK}@", text)
    if "://" in text:
        text = URL.sub(_redact_url, text)
    return HEADER_IN_TEXT.sub(_redact_header, text)


def redact_data(data: Any) -> Any:
    """A copy of JSON-like ``data`` with every string (keys too) passed through :func:`redact`."""
    if isinstance(data, str):
        return redact(data)
    if isinstance(data, Mapping):
        return {redact_data(key): redact_data(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [redact_data(item) for item in data]
    return data


def redact_record(record: logging.LogRecord) -> None:
    """Redact a log record's message and traceback in place, before any handler sees it."""
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: logging reports it when a handler formats
        return
    clean = redact(message)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        trace = logging.Formatter().formatException(record.exc_info)
        if (clean_trace := redact(trace)) != trace:
            record.exc_text = clean_trace  # formatters use this instead of formatting again
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def install_log_redaction() -> None:
    """Redact every log record this process creates, from any logger (once per process).

    A record factory sees each record as it is made, so the console, Prefect's API log
    handler (logs stored in its database) and any handler added later all get the
    redacted text, and a later logging reconfiguration cannot drop it.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "airnub_redacts", False):
        return

    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        redact_record(record)
        return record

    make_record.airnub_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make_record)
