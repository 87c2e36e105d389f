"""Keep secrets out of everything captured (DESIGN §7.4).

Credentials are removed from URLs, and the values of secret-looking environment
variables (tokens, passwords, keys) are redacted wherever they appear in text. In what
people write (the diff, the notebook, the transcript), the secrets that no variable names
are found by detect-secrets' default plugins and redacted where they stand.
"""

from __future__ import annotations

import bisect
import functools
import importlib
import json
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REDACTED = "***"
_SECRET_NAME = re.compile(
    r"TOKEN|SECRET|PASSW|CREDENTIAL|AUTH|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|_KEY$|^KEY", re.I
)
_MIN_SECRET_LENGTH = 6
# scheme://user:password@ or http(s)://token@ inside free text.
_URL_USERINFO = re.compile(
    r"\b([a-z][a-z0-9+.-]*://)[^/\s@:]+:[^/\s@]*@|\b(https?://)[^/\s@]+@", re.I
)
_URL_USERINFO_BYTES = re.compile(_URL_USERINFO.pattern.encode(), re.I)


def scrub_url(url: str) -> str:
    """``url`` without credentials: userinfo (ssh keeps its user name), query and fragment."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return scrub_urls_in(url)
    if not parts.scheme or not parts.netloc:
        return url  # scp-like `git@host:org/repo.git` carries no secret
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if port is not None:
        host = f"{host}:{port}"
    if parts.username and parts.scheme.endswith("ssh"):
        host = f"{parts.username}@{host}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def scrub_urls_in(text: str) -> str:
    """``text`` with the credentials of every URL in it removed."""
    return _URL_USERINFO.sub(r"\1\2", text)


class Scrubber:
    """Redacts the given secret values and URL credentials from text, bytes and records."""

    def __init__(self, secrets: frozenset[str]) -> None:
        # Longest first, so a secret containing another is redacted whole.
        self._secrets = sorted(secrets, key=len, reverse=True)
        self._encoded = [s.encode() for s in self._secrets]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Scrubber:
        environ = os.environ if environ is None else environ
        return cls(
            frozenset(
                value
                for name, value in environ.items()
                if _SECRET_NAME.search(name) and _looks_secret(value)
            )
        )

    def text(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return scrub_urls_in(text)

    def bytes(self, data: bytes) -> bytes:
        for secret in self._encoded:
            data = data.replace(secret, REDACTED.encode())
        return _URL_USERINFO_BYTES.sub(rb"\1\2", data)

    def record(self, value: Any) -> Any:
        """A copy of a JSON-like value with every string scrubbed."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.record(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.record(item) for item in value]
        return value


def _looks_secret(value: str) -> bool:
    """Long enough to be a secret and not a plain path (``SSH_AUTH_SOCK``)."""
    if len(value) < _MIN_SECRET_LENGTH:
        return False
    return not (value.startswith(("/", "~")) and os.path.exists(os.path.expanduser(value)))


# detected secrets ------------------------------------------------------------------------

# Cheap necessary conditions, as regexes over the casefolded text, for the default plugins
# whose own patterns are slow (no literal to search for): a plugin runs on a line only
# when its gate matches it. A plugin not named here is gated by its own patterns, one
# without patterns runs on every line. tests/lineage/test_secrets.py holds each to samples.
_GATES = {
    "KeywordDetector": r"key|pass|pwd|secret|contrase",  # every entry of keyword.DENYLIST
    "ArtifactoryDetector": r"akc|ap[\da-f]",
    "AWSKeyDetector": r"a3t|abia|acca|akia|asia|aws",
    "CloudantDetector": r"key|pw|pass|token|cloudant",
    "IbmCloudIamDetector": r"key|pwd|pass|token",
    "IbmCosHmacDetector": r"secret",
    "IPPublicDetector": r"\.(?<=\d\.)\d{1,3}\.\d{1,3}\.\d",  # a literal first: fast
    "MailchimpDetector": r"-us\d",
    "SlackDetector": r"xox|hooks\.slack\.com",
    "SoftlayerDetector": r"key|pwd|pass|token|softlayer",
    "TelegramBotTokenDetector": r":(?<=\d{8}:)",
}
_PRIVATE_KEY = "Private Key"
"""The type of detect-secrets' finding on a private key's header (its secret is the header,
``BEGIN RSA PRIVATE KEY``): the key is the base64 after it, up to its end."""
_KEY_BODY = re.compile(r"(?<!\\)[A-Za-z0-9+/=]{4,}")  # not the n of an escaped newline
_KEY_END = re.compile(r"-{4,} ?END\b|Private-MAC:")
# A plugin may report part of a token (GitHub's reports the prefix ``ghp``) or a delimiter
# with it (Artifactory's): the delimiters go, and the whole token around it is redacted.
_DELIMITERS = " \t\"'`=:,;"
_TOKEN = "[A-Za-z0-9_-]*"
_TOKEN_START = "(?<![A-Za-z0-9_-])"  # a token's first character: the search stays linear
_TOKEN_END = "(?![A-Za-z0-9_-])"
_ESCAPES_AT_END = re.compile(r"(?:\\[nrt])+$")  # a JSON line's \n, seen as base64 by its plugin
_BINARY_MIME = re.compile(r"image/(?!svg)|audio/|video/|application/pdf")
"""Output and attachment types a notebook stores as base64: data, not text to scan."""
_CODE = "cell.py"
"""The file name notebook and transcript lines are scanned as: detect-secrets picks its
keyword patterns by extension, and cells are Python."""


def redact_detected(data: bytes, name: str, warnings: list[str]) -> bytes:
    """``data`` with every secret that detect-secrets' default plugins find replaced by
    ``REDACTED``: ``name`` ending in ``.diff`` is a git diff, anything else JSON (a notebook,
    a transcript) whose strings are scanned line by line, else plain lines. Never raises:
    what the detector fails on keeps what it had, and the user is told."""
    failures: list[str] = []
    try:
        detector = _detector()
        if name.endswith(".diff"):
            redacted = _redact_lines(data, detector, failures)
        else:
            redacted = _redact_json(data, detector, failures)
    except Exception as exc:  # lineage never blocks a registration
        warnings.append(
            f"secrets: detect-secrets could not scan {name} ({type(exc).__name__}: {exc}); "
            f"only secret environment values and URL credentials are redacted there"
        )
        return data
    if failures:
        warnings.append(
            f"secrets: detect-secrets could not scan {len(failures)} lines of {name} "
            f"({failures[0]}); only secret environment values and URL credentials are "
            "redacted on those"
        )
    return redacted


def _redact_lines(data: bytes, detector: _Detector, failures: list[str]) -> bytes:
    """Each line scanned as a line of its file: a diff's lines without their ``+``/``-``/space
    prefix, its binary patches skipped, and JSON's escaped quotes read as quotes (the diff
    of a notebook)."""
    lines = data.decode(errors="surrogateescape").split("\n")
    scanned: dict[int, tuple[str, str]] = {}  # line number -> (prefix, content)
    filenames: list[str] = []
    filename, binary = "", False
    for number, line in enumerate(lines):
        if line.startswith("diff --git "):
            filename, binary = line.rpartition(" b/")[2], False
        elif line == "GIT binary patch":
            binary = True
        if not binary:
            cut = 1 if line[:1] in ("+", "-", " ") else 0
            scanned[number] = (line[:cut], line[cut:])
            filenames.append(filename)
    contents = [content.replace('\\"', '"') for _, content in scanned.values()]
    found = detector.tokens(contents, filenames, failures)
    for (number, (prefix, content)), tokens in zip(scanned.items(), found, strict=True):
        escaped = {token.replace('"', '\\"') for token in tokens}
        lines[number] = prefix + _redacted(content, tokens | escaped)
    return "\n".join(lines).encode(errors="surrogateescape")


def _redact_json(data: bytes, detector: _Detector, failures: list[str]) -> bytes:
    """Every string of a JSON document scanned line by line (base64 payloads left out),
    written back as jupyreg writes its notebook snapshot and transcript; not JSON: lines."""
    try:
        document = json.loads(data)
    except ValueError:
        return _redact_lines(data, detector, failures)
    places = list(_strings(document))
    texts = [container[key].split("\n") for container, key in places]
    lines = [(at, n) for at, text in enumerate(texts) for n in range(len(text))]
    found = detector.tokens([texts[at][n] for at, n in lines], [_CODE] * len(lines), failures)
    if not any(found):
        return data
    for (at, n), tokens in zip(lines, found, strict=True):
        texts[at][n] = _redacted(texts[at][n], tokens)
    for (container, key), text in zip(places, texts, strict=True):
        container[key] = "\n".join(text)
    return (json.dumps(document, indent=1, ensure_ascii=False) + "\n").encode()


def _strings(value: Any) -> Iterator[tuple[Any, Any]]:
    """``(container, key)`` of every string in a JSON value but base64 payloads
    (``image/png``, ...)."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if isinstance(item, str) and not (isinstance(key, str) and _BINARY_MIME.match(key)):
            yield value, key
        elif isinstance(item, dict | list):
            yield from _strings(item)


@functools.cache
def _detector() -> _Detector:
    return _Detector()


class _Detector:
    """detect-secrets' default plugins and filters, applied to each line as its scan of a
    file does (it verifies nothing by default: nothing is sent anywhere). Each plugin runs
    only on the lines its gate matches (``_GATES``), found in one pass over all the lines."""

    def __init__(self) -> None:
        from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
        from detect_secrets.plugins.base import RegexBasedDetector
        from detect_secrets.plugins.high_entropy_strings import HighEntropyStringsPlugin
        from detect_secrets.settings import Settings
        from detect_secrets.util.inject import get_injectable_variables

        self.plugins: list[tuple[Any, list[re.Pattern[str]], bool]] = []
        for plugin_type in get_mapping_from_secret_type_to_class().values():
            plugin = plugin_type()
            gate = _GATES.get(plugin_type.__name__)
            if gate is not None:
                self.plugins.append((plugin, [re.compile(gate)], True))
            elif isinstance(plugin, RegexBasedDetector):
                patterns = [re.compile(p.pattern, p.flags | re.M) for p in plugin.denylist]
                self.plugins.append((plugin, patterns, False))
            elif isinstance(plugin, HighEntropyStringsPlugin):
                # Its regex, for the strings long enough to pass its limit: the entropy of
                # a string is at most log2 of its length.
                shortest = math.floor(2**plugin.entropy_limit) + 1
                charset = re.escape(plugin.charset)
                gate = re.compile(rf"""(['"])[{charset}]{{{shortest},}}\1""")
                self.plugins.append((plugin, [gate], False))
            else:
                self.plugins.append((plugin, [], False))
        # The default filters that judge a secret on its line (sequential strings, UUIDs,
        # ids, templates, $variables, indirect references); not those that judge a file.
        self.filters: list[tuple[Callable[..., bool], set[str]]] = []
        for path in Settings().filters:
            module, _, function = path.rpartition(".")
            check = getattr(importlib.import_module(module), function)
            parameters = set(get_injectable_variables(check))
            if parameters <= {"secret", "plugin", "line"}:
                self.filters.append((check, parameters))

    def tokens(self, lines: list[str], filenames: list[str], failures: list[str]) -> list[set[str]]:
        """The secret tokens on each line (a private key: its base64 lines). A line where
        detect-secrets fails has none, and its error joins ``failures``."""
        found: list[set[str]] = [set() for _ in lines]
        headers: dict[int, str] = {}  # line number -> the private key header on it
        candidates = self._candidates(lines)
        for number in sorted(candidates):
            line = lines[number]
            try:
                for plugin in candidates[number]:
                    for secret in plugin.analyze_line(filename=filenames[number], line=line):
                        if not self._filtered(secret.secret_value, plugin, line):
                            if secret.type == _PRIVATE_KEY:
                                headers[number] = secret.secret_value
                            else:
                                found[number] |= _tokens(secret.secret_value, line)
            except Exception as exc:  # a failed line keeps what the scrubber left
                failures.append(f"{type(exc).__name__}: {exc}")
                found[number] = set()
        in_key = False
        for number, line in enumerate(lines):
            header = headers.get(number)
            if header is None and not (in_key and filenames[number] == filenames[number - 1]):
                in_key = False
                continue
            body = line if header is None else line[line.find(header) + len(header) :]
            end = _KEY_END.search(body)
            for run in _KEY_BODY.findall(body[: end.start()] if end else body):
                found[number] |= _tokens(run, line)
            in_key = end is None
        return found

    def _candidates(self, lines: list[str]) -> dict[int, list[Any]]:
        """Line number -> the plugins whose gate matches it."""
        text = "\n".join(lines)
        folded = "\n".join(line.casefold() for line in lines)  # casefold keeps the newlines
        starts = _starts(lines)
        folded_starts = _starts(folded.split("\n"))
        candidates: dict[int, list[Any]] = {}
        for plugin, patterns, on_folded in self.plugins:
            scanned, at = (folded, folded_starts) if on_folded else (text, starts)
            numbers: set[int] = set()
            for pattern in patterns:
                for match in pattern.finditer(scanned):
                    first = bisect.bisect_right(at, match.start()) - 1
                    last = bisect.bisect_right(at, max(match.end() - 1, match.start())) - 1
                    numbers.update(range(first, last + 1))
            if not patterns:
                numbers = set(range(len(lines)))
            for number in numbers:
                candidates.setdefault(number, []).append(plugin)
        return candidates

    def _filtered(self, secret: str, plugin: Any, line: str) -> bool:
        given = {"secret": secret, "plugin": plugin, "line": line}
        return any(
            check(**{name: given[name] for name in parameters})
            for check, parameters in self.filters
        )


def _starts(lines: list[str]) -> list[int]:
    """Where each line starts in the lines joined by newlines."""
    starts, at = [], 0
    for line in lines:
        starts.append(at)
        at += len(line) + 1
    return starts


def _tokens(secret: str, line: str) -> set[str]:
    """The whole tokens of ``line`` that hold ``secret`` (its delimiters stripped)."""
    core = _ESCAPES_AT_END.sub("", secret.strip(_DELIMITERS))
    if not core:
        return set()
    around = _TOKEN_START + _TOKEN + re.escape(core) + _TOKEN
    return {match.group() for match in re.finditer(around, line)}


def _redacted(text: str, tokens: set[str]) -> str:
    """``text`` with each whole occurrence of the tokens replaced by ``REDACTED``."""
    for token in sorted(tokens, key=len, reverse=True):
        text = re.sub(_TOKEN_START + re.escape(token) + _TOKEN_END, REDACTED, text)
    return text
