"""The downgrade cases of tests/h2raw.py (`h2raw.py case NAME...`): HTTP/2
request heads that an HTTP/1.1 backend could read otherwise than the
router, each of which the router must refuse, and ok-* controls that it
must forward. `h2raw.py --help-cases` lists them.
"""


# ---- the downgrade cases ---------------------------------------------------
# name -> (method, extra headers, body pieces, content-length or None, where
# the extra headers go). Every :path names "h2case", so the backend's log
# shows whether any of them arrived; the ok-* controls must be answered.

def case_table(auth):
    G, P = b"GET", b"POST"
    smuggled = b"GET /echo?h2case=smuggled HTTP/1.1\r\nHost: " + auth + b"\r\n\r\n"
    return {
        "connection": (G, [(b"connection", b"keep-alive")], None, None),
        "transfer-encoding": (P, [(b"transfer-encoding", b"chunked")], [b"0\r\n\r\n" + smuggled], None),
        "keep-alive": (G, [(b"keep-alive", b"timeout=5")], None, None),
        "upgrade": (G, [(b"upgrade", b"websocket")], None, None),
        "proxy-connection": (G, [(b"proxy-connection", b"keep-alive")], None, None),
        "te-gzip": (G, [(b"te", b"gzip")], None, None),
        "te-trailers-gzip": (G, [(b"te", b"trailers, gzip")], None, None),
        "cl-less-data": (P, [], [b"abc"], b"10"),
        "cl-more-data": (P, [], [b"abcdefgh"], b"3"),
        "cl-zero-smuggle": (P, [], [smuggled], b"0"),
        "cl-no-data": (P, [], None, b"5"),
        "cl-twice": (P, [(b"content-length", b"4")], [b"abc"], b"3"),
        "cl-not-a-number": (P, [], [b"abc"], b"3x"),
        "upper-case-name": (G, [(b"X-Upper", b"v")], None, None),
        "upper-case-pseudo": (G, [(b":Path", b"/echo")], None, None),
        "unknown-pseudo": (G, [(b":foo", b"bar")], None, None),
        "status-in-request": (G, [(b":status", b"200")], None, None),
        "cr-in-value": (G, [(b"x-bad", b"a\rb")], None, None),
        "lf-in-value": (G, [(b"x-bad", b"a\nb")], None, None),
        "crlf-header-in-value": (G, [(b"x-bad", b"a\r\nTransfer-Encoding: chunked")], None, None),
        "nul-in-value": (G, [(b"x-bad", b"a\x00b")], None, None),
        "cr-in-name": (G, [(b"x-b\rad", b"v")], None, None),
        "lf-in-name": (G, [(b"x-b\nad", b"v")], None, None),
        "nul-in-name": (G, [(b"x-b\x00ad", b"v")], None, None),
        "space-in-name": (G, [(b"x bad", b"v")], None, None),
        "tab-in-name": (G, [(b"x\tbad", b"v")], None, None),
        "colon-in-name": (G, [(b"x:bad", b"v")], None, None),
        "empty-name": (G, [(b"", b"v")], None, None),
        "space-before-value": (G, [(b"x-bad", b" v")], None, None),
        "space-after-value": (G, [(b"x-bad", b"v ")], None, None),
        "tab-before-value": (G, [(b"x-bad", b"\tv")], None, None),
        "space-in-method": ("pseudo", {b":method": b"GET /x"}, None, None),
        "space-in-path": ("pseudo", {b":path": b"/echo?h2case=space-in-path x"}, None, None),
        "lf-in-path": ("pseudo", {b":path": b"/echo?h2case=lf-in-path\nX: y"}, None, None),
        "space-in-authority": ("pseudo", {b":authority": auth + b" x"}, None, None),
        "userinfo-in-authority": ("pseudo", {b":authority": b"user@" + auth}, None, None),
        "no-method": ("pseudo", {b":method": None}, None, None),
        "no-path": ("pseudo", {b":path": None}, None, None),
        "empty-path": ("pseudo", {b":path": b""}, None, None),
        "no-scheme": ("pseudo", {b":scheme": None}, None, None),
        "no-authority-no-host": ("pseudo", {b":authority": None}, None, None),
        "two-methods": (G, [(b":method", b"GET")], None, "first"),
        "two-paths": (G, [(b":path", b"/echo?h2case=two-paths-2")], None, "first"),
        "two-schemes": (G, [(b":scheme", b"https")], None, "first"),
        "two-authorities": (G, [(b":authority", auth)], None, "first"),
        "pseudo-after-regular": ("order", None, None, None),
        "path-absolute-form": ("pseudo", {b":path": b"http://" + auth + b"/echo?h2case=path-absolute-form"}, None, None),
        "path-no-slash": ("pseudo", {b":path": b"echo?h2case=path-no-slash"}, None, None),
        "path-asterisk-get": ("pseudo", {b":path": b"*"}, None, None),
        "authority-host-mismatch": (G, [(b"host", b"other.test")], None, None),
        "huge-header": (G, [(b"x-huge", b"h" * 200000)], None, None),
        "trailer-pseudo": (P, [], [b"abc"], b"3"),
        "ok-get": (G, [], None, None),
        "ok-te-trailers": (G, [(b"te", b"trailers")], None, None),
        "ok-post-length": (P, [], [b"abc"], b"3"),
        "ok-post-no-length": (P, [], [b"ab", b"c"], None),
        "ok-host-same": (G, [(b"host", auth)], None, None),
        "ok-cookies": (G, [(b"cookie", b"a=1"), (b"cookie", b"b=2")], None, None),
        "ok-options-asterisk": ("pseudo", {b":method": b"OPTIONS", b":path": b"*"}, None, None),
    }
