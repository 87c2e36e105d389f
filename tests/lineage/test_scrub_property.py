"""Property: whatever the password or token, a scrubbed URL does not contain it."""

from __future__ import annotations

import string

import pytest

from jupyreg.lineage.scrub import Scrubber, scrub_url

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies

# RFC 3986 userinfo characters; the "S3" prefix appears nowhere else in the URL.
secrets = st.text(string.ascii_letters + string.digits + "-._~!$&'()*+,;=%", min_size=4).map(
    lambda text: "S3" + text
)
schemes = st.sampled_from(["https", "http", "ssh", "git+ssh", "ftp", "s3"])


@hypothesis.given(secret=secrets, scheme=schemes)
def test_scrub_url_drops_passwords_and_query_tokens(secret: str, scheme: str) -> None:
    url = f"{scheme}://user:{secret}@host.example/x.git?token={secret}#{secret}"
    assert secret not in scrub_url(url)


@hypothesis.given(secret=secrets)
def test_token_as_https_user_is_dropped(secret: str) -> None:
    assert scrub_url(f"https://{secret}@host.example/x.git") == "https://host.example/x.git"


@hypothesis.given(secret=secrets)
def test_credentials_in_free_text_are_dropped(secret: str) -> None:
    text = f"clone https://user:{secret}@host.example/x.git and ftp://me:{secret}@h/f"
    assert secret not in Scrubber(frozenset()).text(text)
