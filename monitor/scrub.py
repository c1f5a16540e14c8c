"""URL scrubbing: the first thing that happens to a URL, before it is stored, alerted or logged.

URLs in a K-12 filter carry student data: search terms, e-mail addresses, session tokens,
student ids in query strings and fragments, credentials in the userinfo part. We keep
what an analyst needs to see *which page* was blocked (scheme, host, path) and drop the
rest. With a key configured, the query string survives as a keyed hash (HMAC-SHA256,
truncated), so two requests for the same page with the same query can still be told
apart without the query being readable. Path segments that look like identifiers
(e-mail addresses, long digit runs, long hex/base64 tokens) are redacted too.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from urllib.parse import urlsplit

__all__ = ["domain_of", "scrub_text", "scrub_url"]

_REDACTED = "{redacted}"
_EMAIL = re.compile(r"[^/@\s]+@[^/@\s]+")
_LONG_DIGITS = re.compile(r"\d{6,}")
_TOKEN = re.compile(r"^[A-Za-z0-9_\-]{24,}$")
_MAX_URL = 2048
_CLEAN_MAX = 1 << 16
_clean: set[str] = set()  # URLs whose scrubbed form is themselves
_SUSPICIOUS = re.compile(r"@|\d{6}|[A-Za-z0-9_\-]{24}")

# For free text (dead-letter excerpts, error details): remove anything after '?' or '#'
# up to a delimiter, and e-mail addresses.
_TEXT_QUERY = re.compile(r"[?#][^\s\"'<>]*")
_TEXT_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_TEXT_USERINFO = re.compile(r"(?<=://)[^/\s\"'@]+@")


def _scrub_segment(segment: str) -> str:
    if not segment:
        return segment
    if _EMAIL.search(segment) or _LONG_DIGITS.search(segment) or _TOKEN.match(segment):
        return _REDACTED
    return segment


def scrub_url(url: str, hash_key: bytes | None = None) -> str:
    """Return ``url`` with userinfo, query string and fragment removed and ids redacted.

    URLs already clean (nothing to drop or redact) are remembered in a bounded set, so
    a popular page costs one set look-up; only such URLs are kept, never one that
    carried a query, a fragment, userinfo or an identifier.

    >>> scrub_url("https://User:pw@Search.Example.com/q/jane.doe@school.org?q=help#top")
    'https://search.example.com/q/{redacted}'
    >>> scrub_url("https://example.com/a?x=1", hash_key=b"k").startswith("https://example.com/a?_qh=")
    True
    """
    if url in _clean:
        return url
    scrubbed = _scrub_url(url, hash_key)
    if scrubbed == url:
        if len(_clean) >= _CLEAN_MAX:
            _clean.clear()
        _clean.add(url)
    return scrubbed


def _scrub_url(url: str, hash_key: bytes | None) -> str:
    s = url.strip()
    cut = len(s)
    q = s.find("?")
    if q != -1:
        cut = q
    f = s.find("#")
    if f != -1 and f < cut:
        cut = f
    base = s[:cut]
    i = base.find("://")
    if i <= 0:
        return _scrub_url_slow(s, hash_key)
    rest = base[i + 3 :]
    j = rest.find("/")
    netloc, path = (rest, "") if j == -1 else (rest[:j], rest[j:])
    if "@" in netloc:
        netloc = netloc.rsplit("@", 1)[1]
    if "[" in netloc or "\\" in netloc or "%" in netloc:
        return _scrub_url_slow(s, hash_key)  # IPv6 literals, escapes: take the careful path
    netloc = netloc.lower()
    if _SUSPICIOUS.search(path):
        path = "/".join(_scrub_segment(seg) for seg in path.split("/"))
    scrubbed = f"{base[:i].lower()}://{netloc}{path}"
    if hash_key is not None and cut < len(s):
        digest = hmac.new(hash_key, s[cut:].encode(), hashlib.sha256)
        scrubbed += "?_qh=" + digest.hexdigest()[:16]
    return scrubbed[:_MAX_URL]


def _scrub_url_slow(url: str, hash_key: bytes | None) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "invalid-url"
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if _safe_port(parts) else ""
    path = "/".join(_scrub_segment(seg) for seg in parts.path.split("/"))
    scheme = parts.scheme.lower() or "http"
    scrubbed = f"{scheme}://{host}{port}{path}"
    if hash_key is not None and (parts.query or parts.fragment):
        digest = hmac.new(hash_key, f"?{parts.query}#{parts.fragment}".encode(), hashlib.sha256)
        scrubbed += "?_qh=" + digest.hexdigest()[:16]
    return scrubbed[:_MAX_URL]


def _safe_port(parts) -> bool:
    try:
        return parts.port is not None
    except ValueError:
        return False


def domain_of(url: str) -> str:
    """Lower-cased host of ``url`` without a leading ``www.``; empty when there is none."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""
    return host[4:] if host.startswith("www.") else host


def scrub_text(text: str, limit: int = 512) -> str:
    """Scrub free text that may embed URLs (for dead-letter excerpts), then truncate.

    >>> scrub_text('{"url": "https://a.org/p?student=42#x", "who": "kid@school.org"}')
    '{"url": "https://a.org/p{scrubbed}", "who": "{email}"}'
    """
    text = _TEXT_USERINFO.sub("", text)
    text = _TEXT_QUERY.sub("{scrubbed}", text)
    text = _TEXT_EMAIL.sub("{email}", text)
    return text[:limit]
