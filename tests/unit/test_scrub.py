import pytest

from monitor.scrub import domain_of, scrub_text, scrub_url


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://example.com/a/b?x=1&y=2", "https://example.com/a/b"),
        ("https://example.com/a#frag", "https://example.com/a"),
        ("https://example.com/a#frag?x=1", "https://example.com/a"),
        ("HTTPS://Example.COM/Path", "https://example.com/Path"),
        ("https://user:pass@example.com/x", "https://example.com/x"),
        ("https://example.com:8443/x?q", "https://example.com:8443/x"),
        ("https://example.com/u/jane.doe@school.org/p", "https://example.com/u/{redacted}/p"),
        ("https://example.com/student/12345678", "https://example.com/student/{redacted}"),
        ("https://example.com/s/AbCdEfGhIjKlMnOpQrStUvWxYz", "https://example.com/s/{redacted}"),
        ("https://example.com", "https://example.com"),
        ("http://[::1]:8080/p?x=1", "http://[::1]:8080/p"),
    ],
)
def test_scrub_url(url, expected):
    assert scrub_url(url) == expected


def test_no_query_or_fragment_survives():
    for url in ("https://a.org/?s=kid@x.org", "https://a.org/p;x?q#f", "https://a.org/p?"):
        out = scrub_url(url)
        assert "?" not in out and "#" not in out and "@" not in out


def test_keyed_hash_is_stable_and_keyed():
    a = scrub_url("https://a.org/p?q=1", hash_key=b"k1")
    assert a == scrub_url("https://a.org/p?q=1", hash_key=b"k1")
    assert a != scrub_url("https://a.org/p?q=1", hash_key=b"k2")
    assert "q=1" not in a


def test_domain_of():
    assert domain_of("https://www.Example.com/x") == "example.com"
    assert domain_of("not a url") == ""


def test_scrub_text_removes_queries_emails_and_userinfo():
    s = scrub_text('{"url":"https://bob:pw@a.org/x?id=7","mail":"k@school.org"}')
    assert "id=7" not in s and "k@school.org" not in s and "bob:pw" not in s
