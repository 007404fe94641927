"""State URLs as igor shows them: where the store is, never its password.

`IGOR_STATE_URL` may carry a password in the user info (`redis://:pw@host`, typed
with `/`, `?` or `#` in it as often as %-escaped) or in the query string
(redis-py's `?password=...`, also for `unix://` sockets). Doctor, the log, error
messages and chat replies show the scheme, host, port (or socket path or file)
and database only; the log scrubber learns the password (`url_secrets`).
"""

from __future__ import annotations

# A query parameter that holds a credential (redis-py reads `password` and `username` there).
_CREDENTIAL_QUERY = r"[?&](?:password|username|user)=[^&]*$"
_SHORTEST_HIDDEN = 3  # shorter pieces would blot out ordinary words and numbers


def _split(url: str) -> tuple[str, str, str]:
    """(scheme, user info, the rest) of a state URL; the user info is "" when it has none.

    A password may hold `/`, `?`, `#` or `@` typed as they are (not %-escaped): the user
    info runs to the last `@`, unless that `@` is inside a `password=` query value.
    """
    import re

    scheme, _, rest = url.strip().partition("://")
    at = len(rest)
    while True:
        at = rest.rfind("@", 0, at)
        if at < 0:
            return scheme.lower(), "", rest
        if not re.search(_CREDENTIAL_QUERY, rest[:at]):
            return scheme.lower(), rest[:at], rest[at + 1 :]


def _is_file(url: str) -> bool:
    return url.strip().lower().startswith("sqlite://")


def url_secrets(url: str) -> list[str]:
    """What in a state URL must never be shown: its user info and password (as typed, and
    %-decoded), and the values of its `password` and `username` query parameters."""
    import re
    from urllib.parse import unquote

    if _is_file(url):
        return []
    _, userinfo, _ = _split(url)
    found = []
    if userinfo:
        password = userinfo.partition(":")[2]
        found += [userinfo, unquote(userinfo), password, unquote(password)]
        # A driver that misreads such a URL may quote a piece of it (as a port, a path).
        found += re.split(r"[:/?#@]", password)
    for match in re.finditer(r"[?&](?:password|username|user)=([^&#]*)", url):
        found += [match.group(1), unquote(match.group(1))]
    return sorted({s for s in found if len(s) >= _SHORTEST_HIDDEN}, key=len, reverse=True)


def hide_secrets(text: str, url: str) -> str:
    """`text` (an error message from a driver) without anything secret of `url` in it."""
    for secret in url_secrets(url):
        text = text.replace(secret, "***")
    return text


def shown_url(url: str) -> str:
    """A state URL as igor shows it (doctor, the log, errors, chat replies): the scheme, the
    host and port (or the socket's path, or the file) and the database, nothing else.

    A user name, a password and every other query parameter are left out, however they
    are written; what cannot be told apart from them is left out too.
    """
    from urllib.parse import parse_qs, urlsplit

    if _is_file(url):
        return url.strip()  # a path on this machine (which may hold an @): no secret
    scheme, _, rest = _split(url)
    if not scheme:
        return "(not a URL)"
    parts = urlsplit(f"{scheme}://{rest}")
    queried = parse_qs(parts.query).get("db", [""])[0]
    if scheme == "unix":  # unix:///path/to/redis.sock?db=0
        shown = f"unix://{parts.path}"
        db = queried
    else:
        try:
            port = parts.port
        except ValueError:  # not a number: a piece of something else, never shown
            port = None
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host  # an IPv6 address
        shown = f"{scheme}://{host}:{port}" if host and port else f"{scheme}://{host}"
        db = parts.path.strip("/") or queried
    if db.isdigit():
        shown += f"?db={db}" if scheme == "unix" else f"/{db}"
    # A safety net: nothing secret, whatever the parsing above made of a strange URL.
    if any(secret in shown.removeprefix(f"{scheme}://") for secret in url_secrets(url)):
        return f"{scheme}://(hidden: the URL holds its password where igor cannot tell it apart)"
    return shown
