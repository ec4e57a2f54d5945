#!/usr/bin/env python3
"""Write the hand-written seed inputs of the fuzz corpora (tests/fuzz/corpus/<target>/seed-*).

Each seed is one byte stream as a client would send it on a connection. They are kept in
the committed corpus whatever the minimisation says (tests/fuzz/minimize.sh never drops a
seed-* file), so each interesting case stays a named regression test. Run it again after
changing the list; it rewrites every seed-* file and removes the ones no longer listed.

    python3 tests/fuzz/make_seeds.py [CORPUS_DIR]   (default: tests/fuzz/corpus)
"""
import os
import sys

CRLF = b"\r\n"


def req(line, *fields, body=b"", end=CRLF):
    """A request: request line, fields, empty line, body (all with CRLF unless told)."""
    out = line + end
    for f in fields:
        out += f + end
    return out + end + body


def get(path=b"/", *fields, version=b"HTTP/1.1"):
    return req(b"GET " + path + b" " + version, b"Host: a", *fields)


def post(body, *fields, path=b"/echo"):
    return req(b"POST " + path + b" HTTP/1.1", b"Host: a",
               b"Content-Length: %d" % len(body), *fields, body=body)


def chunked(*parts, trailers=(), path=b"/echo", eol=CRLF):
    body = b""
    for p in parts:
        body += b"%x" % len(p) + eol + p + eol
    body += b"0" + eol
    for t in trailers:
        body += t + eol
    body += eol
    return req(b"POST " + path + b" HTTP/1.1", b"Host: a", b"Transfer-Encoding: chunked",
               body=body, end=eol)


def raw_chunked(body, *fields):
    return req(b"POST /echo HTTP/1.1", b"Host: a", b"Transfer-Encoding: chunked",
               *fields, body=body)


BIG_HEADERS = b"".join(b"X-F%02d: %s\r\n" % (i, b"v" * 100) for i in range(64))

HTTP = {
    # ---- valid requests, each route
    "get-root": get(),
    "get-root-http10": req(b"GET / HTTP/1.0"),
    "get-root-http10-keepalive": req(b"GET / HTTP/1.0", b"Connection: keep-alive"),
    "get-root-http11-close": get(b"/", b"Connection: close"),
    "get-root-http12-is-11": get(version=b"HTTP/1.2"),
    "head-root": req(b"HEAD / HTTP/1.1", b"Host: a"),
    "get-query": get(b"/?a=b&c=%20d"),
    "get-404": get(b"/nowhere"),
    "post-root-405": post(b"x", path=b"/"),
    "get-echo-405": get(b"/echo"),
    "get-stats": get(b"/stats"),
    "head-stats": req(b"HEAD /stats HTTP/1.1", b"Host: a"),
    "get-metrics": get(b"/metrics"),
    "put-metrics-405": req(b"PUT /metrics HTTP/1.1", b"Host: a", b"Content-Length: 0"),
    "post-echo": post(b"hello, world"),
    "post-echo-empty": post(b""),
    "post-echo-binary": post(bytes(range(256))),
    "post-echo-http10": req(b"POST /echo HTTP/1.0", b"Content-Length: 3", body=b"abc"),
    "absolute-form": req(b"GET http://a:80/echo?x=1 HTTP/1.1", b"Host: a"),
    "absolute-form-no-path": req(b"GET http://a HTTP/1.1", b"Host: a"),
    "authority-form": req(b"CONNECT a:443 HTTP/1.1", b"Host: a:443"),
    "asterisk-form": req(b"OPTIONS * HTTP/1.1", b"Host: a"),
    "asterisk-form-m-search": req(b"M-SEARCH * HTTP/1.1", b"Host: 239.255.255.250:1900"),
    "absolute-form-other-scheme": req(b"GET urn:isbn:0451450523 HTTP/1.1", b"Host: a"),
    "absolute-form-scheme-chars": req(b"GET coap+tcp-1.x://a/echo HTTP/1.1", b"Host: a"),
    "absolute-form-https-ipv6": req(b"GET https://[::1]:8443/echo?q HTTP/1.1", b"Host: [::1]:8443"),
    "target-all-rfc3986-chars": req(b"GET /AZaz09-._~!$&'()*+,;=:@/?%20%7e[] HTTP/1.1", b"Host: a"),
    "host-reg-name-port": req(b"GET / HTTP/1.1", b"Host: www.example.com:8080"),
    "extension-method": req(b"BREW /pot HTTP/1.1", b"Host: a"),
    "method-tchars": req(b"!#$%&'*+-.^_`|~09az /x HTTP/1.1", b"Host: a"),
    "leading-empty-lines": b"\r\n\r\n\r\n" + get(),
    "ows-around-value": get(b"/", b"X-A:   v a l  \t", b"X-B:\tv"),
    "empty-value": get(b"/", b"X-Empty:", b"X-Spaces:    "),
    "obs-text-value": get(b"/", b"X-Latin: caf\xe9 \x80\xff"),
    "case-insensitive-names": req(b"POST /echo HTTP/1.1", b"HOST: a", b"content-LENGTH: 2",
                                  body=b"hi"),
    "content-length-leading-zeros": req(b"POST /echo HTTP/1.1", b"Host: a",
                                        b"Content-Length: 0003", body=b"abc"),
    "host-empty": req(b"GET / HTTP/1.1", b"Host:"),
    "connection-list": get(b"/", b"Connection: foo, keep-alive ,close"),
    "max-headers-64": req(b"GET / HTTP/1.1", b"Host: a",
                          *[b"X-%d: v" % i for i in range(63)]),
    "headers-near-8k": get(b"/", b"X-Big: " + b"b" * 8100),
    # ---- chunked bodies
    "chunked": chunked(b"hello", b", world"),
    "chunked-one-byte-chunks": chunked(*[bytes([c]) for c in b"abcdefgh"]),
    "chunked-extensions-trailers": raw_chunked(
        b"5;name=value\r\nhello\r\n6 ; a=\"q s\";b\r\n world\r\n0;last\r\n"
        b"X-Trailer: t\r\nX-Other:\r\n\r\n"),
    "chunked-hex-case-leading-zeros": raw_chunked(b"000A\r\n0123456789\r\n0a\r\n0123456789\r\n"
                                                  b"0000\r\n\r\n"),
    "chunk-ext-bws-before-semicolon": raw_chunked(b"5 ;a=b\r\nhello\r\n5\t; a =\tb ;c\r\n"
                                                  b"world\r\n0;d=\"\"\r\n\r\n"),
    "chunk-ext-quoted-pair": raw_chunked(b"5;a=\"q \\\" s\\\\\";b=!#$%&'*+-.^_`|~\r\nhello\r\n"
                                         b"0\r\n\r\n"),
    "chunk-ext-name-only": raw_chunked(b"5;a\r\nhello\r\n0;last\r\n\r\n"),
    "chunk-size-many-leading-zeros": raw_chunked(b"0000000000000000005\r\nhello\r\n0\r\n\r\n"),
    "chunked-empty-body": chunked(),
    "chunked-te-case-ows": req(b"POST /echo HTTP/1.1", b"Host: a",
                               b"transfer-encoding:  CHUNKED ", body=b"1\r\nx\r\n0\r\n\r\n"),
    "chunked-then-get": chunked(b"abc") + get(),
    "chunked-expect-100": req(b"POST /echo HTTP/1.1", b"Host: a", b"Expect: 100-continue",
                              b"Transfer-Encoding: chunked", body=b"3\r\nabc\r\n0\r\n\r\n"),
    # ---- pipelining and connection handling
    "pipelined": get() + post(b"abc") + req(b"HEAD /stats HTTP/1.1", b"Host: a") + get(b"/x"),
    "pipelined-close-stops": get(b"/", b"Connection: close") + get(),
    "pipelined-http10-then-more": req(b"GET / HTTP/1.0") + get(),
    "pipelined-error-after-good": get() + b"BAD\r\n\r\n",
    "expect-100-continue": post(b"body!", b"Expect: 100-continue"),
    "expect-100-continue-http10-ignored": req(b"POST /echo HTTP/1.0", b"Content-Length: 1",
                                              b"Expect: something", body=b"x"),
    # ---- incomplete (need more)
    "partial-request-line": b"GET / HTT",
    "partial-headers": b"GET / HTTP/1.1\r\nHost: a\r\n",
    "partial-terminator-cr": b"GET / HTTP/1.1\r\nHost: a\r\n\r",
    "partial-body": req(b"POST /echo HTTP/1.1", b"Host: a", b"Content-Length: 10", body=b"abc"),
    "partial-chunk": raw_chunked(b"a\r\nabc"),
    "partial-chunk-size-line": raw_chunked(b"a;ext=1"),
    "partial-trailers": raw_chunked(b"0\r\nX-T: 1\r\n"),
    "partial-expect-100": req(b"POST /echo HTTP/1.1", b"Host: a", b"Content-Length: 5",
                              b"Expect: 100-continue"),
    # ---- 400 Bad Request
    "400-missing-host-http11": req(b"GET / HTTP/1.1"),
    "400-two-hosts": get(b"/", b"Host: b"),
    "400-space-before-colon": get(b"/", b"X-A : v"),
    "400-tab-before-colon": get(b"/", b"X-A\t: v"),
    "400-obs-fold": get(b"/", b"X-A: v", b" folded"),
    "400-empty-name": get(b"/", b": v"),
    "400-no-colon": get(b"/", b"NoColon"),
    "400-bare-cr-in-value": get(b"/", b"X-A: a\rb"),
    "400-bare-cr-line-end": b"GET / HTTP/1.1\rHost: a\r\n\r\n",
    "400-nul-in-value": get(b"/", b"X-A: a\x00b"),
    "400-nul-in-target": req(b"GET /a\x00b HTTP/1.1", b"Host: a"),
    "400-ctl-in-value": get(b"/", b"X-A: a\x7fb"),
    "400-8bit-in-target": req(b"GET /caf\xe9 HTTP/1.1", b"Host: a"),
    "400-double-space": req(b"GET  / HTTP/1.1", b"Host: a"),
    "400-tab-separator": req(b"GET\t/ HTTP/1.1", b"Host: a"),
    "400-trailing-space-version": req(b"GET / HTTP/1.1 ", b"Host: a"),
    "400-lowercase-version": req(b"GET / http/1.1", b"Host: a"),
    "400-version-garbage": req(b"GET / HTTP/1.x", b"Host: a"),
    "400-no-version": req(b"GET /", b"Host: a"),
    "400-http09-style": b"GET /\r\n\r\n",
    "400-bad-method-char": req(b"GE(T / HTTP/1.1", b"Host: a"),
    "400-empty-method": req(b" / HTTP/1.1", b"Host: a"),
    "400-space-in-target": req(b"GET /a b HTTP/1.1", b"Host: a"),
    "400-target-no-form": req(b"GET , HTTP/1.1", b"Host: a"),
    "400-target-relative": req(b"GET echo HTTP/1.1", b"Host: a"),
    "400-target-fragment": req(b"GET /echo#frag HTTP/1.1", b"Host: a"),
    "400-target-bad-pct": req(b"GET /a%zz HTTP/1.1", b"Host: a"),
    "400-target-pct-cut": req(b"GET /a% HTTP/1.1", b"Host: a"),
    "400-target-raw-brace-pipe": req(b"GET /{a|b} HTTP/1.1", b"Host: a"),
    "400-target-dquote": req(b"GET /a\"b HTTP/1.1", b"Host: a"),
    "400-target-pipe": req(b"GET /a|b HTTP/1.1", b"Host: a"),
    "400-target-raw-0x80": req(b"GET /\x80 HTTP/1.1", b"Host: a"),
    "400-target-fragment-after-query": req(b"GET /?q=1#frag HTTP/1.1", b"Host: a"),
    "400-target-http-no-authority": req(b"GET http:/0a:/8/echo HTTP/1.1", b"Host: a"),
    "400-target-http-empty-host": req(b"GET http:///echo HTTP/1.1", b"Host: a"),
    "400-host-space": req(b"GET / HTTP/1.1", b"Host: a b"),
    "400-host-userinfo": req(b"GET / HTTP/1.1", b"Host: user@a"),
    "400-host-path": req(b"GET / HTTP/1.1", b"Host: a/b"),
    "400-host-8bit": req(b"GET / HTTP/1.1", b"Host: \xe9a"),
    "400-cl-not-digits": req(b"POST /echo HTTP/1.1", b"Host: a", b"Content-Length: 5a"),
    "400-cl-negative": req(b"POST /echo HTTP/1.1", b"Host: a", b"Content-Length: -1"),
    "400-cl-plus": req(b"POST /echo HTTP/1.1", b"Host: a", b"Content-Length: +1", body=b"x"),
    "400-cl-list": req(b"POST /echo HTTP/1.1", b"Host: a", b"Content-Length: 1, 1", body=b"x"),
    "400-cl-empty": req(b"POST /echo HTTP/1.1", b"Host: a", b"Content-Length:"),
    "400-cl-overflow": req(b"POST /echo HTTP/1.1", b"Host: a",
                           b"Content-Length: 99999999999999999999999"),
    "400-two-cl-equal": req(b"POST /echo HTTP/1.1", b"Host: a", b"Content-Length: 1",
                            b"Content-Length: 1", body=b"x"),
    "400-cl-and-te": req(b"POST /echo HTTP/1.1", b"Host: a", b"Content-Length: 3",
                         b"Transfer-Encoding: chunked", body=b"0\r\n\r\n"),
    "400-te-http10": req(b"POST /echo HTTP/1.0", b"Transfer-Encoding: chunked",
                         body=b"0\r\n\r\n"),
    "400-te-empty": req(b"POST /echo HTTP/1.1", b"Host: a", b"Transfer-Encoding:"),
    "400-te-chunked-not-last": req(b"POST /echo HTTP/1.1", b"Host: a",
                                   b"Transfer-Encoding: chunked, gzip", body=b"0\r\n\r\n"),
    "400-chunk-size-not-hex": raw_chunked(b"x\r\nabc\r\n0\r\n\r\n"),
    "400-chunk-size-missing": raw_chunked(b"\r\nabc\r\n0\r\n\r\n"),
    "400-chunk-size-space-inside": raw_chunked(b"1 0\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n"),
    "400-chunk-no-crlf-after-data": raw_chunked(b"3\r\nabcX\r\n0\r\n\r\n"),
    "400-chunk-ext-ctl": raw_chunked(b"3;a=\x01\r\nabc\r\n0\r\n\r\n"),
    "400-chunk-size-line-too-long": raw_chunked(b"1;" + b"e" * 1100 + b"\r\nx\r\n0\r\n\r\n"),
    "400-chunk-bare-cr": raw_chunked(b"3\rabc\r\n0\r\n\r\n"),
    "400-chunked-bare-lf": chunked(b"hello", eol=b"\n"),
    "400-chunk-size-bare-lf": raw_chunked(b"5\nhello\r\n0\r\n\r\n"),
    "400-chunk-data-bare-lf": raw_chunked(b"5\r\nhello\n0\r\n\r\n"),
    "400-chunk-data-any-two-bytes": raw_chunked(b"5\r\nhelloXY0\r\n\r\n"),
    "400-last-chunk-bare-lf": raw_chunked(b"5\r\nhello\r\n0\n\r\n"),
    "400-chunk-data-lf-then-size-smuggle": raw_chunked(b"6\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n"),
    "400-bad-trailer": raw_chunked(b"0\r\nBad Trailer: x\r\n\r\n"),
    # ---- issue 13 section 2: bare LF anywhere in the head or the chunked framing (400 as
    # the LF arrives): the header-smuggling case first, "GET /" hiding a "GET /admin"
    "400-bare-lf-smuggled-content-length": (
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Pad: x\nContent-Length: 24\r\n\r\n"
        b"GET /padd HTTP/1.1\r\nXY: GET /admin HTTP/1.1\r\nHost: a\r\n\r\n"),
    "400-bare-lf-lines": req(b"GET / HTTP/1.1", b"Host: a", end=b"\n"),
    "400-bare-lf-request-line": b"GET / HTTP/1.1\nHost: a\r\n\r\n",
    "400-bare-lf-mixed": b"GET / HTTP/1.1\r\nHost: a\n\r\n",
    "400-bare-lf-ends-header-section": b"GET / HTTP/1.1\r\nHost: a\r\n\n",
    "400-bare-lf-leading-empty-line": b"\r\n\r\n\n" + get(),
    "400-bare-lf-after-good": get() + b"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n",
    "400-bare-lf-chunk-ext": raw_chunked(b"5;a=b\nhello\r\n0\r\n\r\n"),
    "400-bare-lf-trailers": raw_chunked(b"3\r\nabc\r\n0\r\nX-T: 1\nX-U: 2\n\n"),
    "400-bare-lf-trailer-section-end": raw_chunked(b"3\r\nabc\r\n0\r\nX-T: 1\r\n\n"),
    # ---- chunk-ext = *( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] )
    "400-chunk-ext-no-name": raw_chunked(b"5;\r\nhello\r\n0\r\n\r\n"),
    "400-chunk-ext-unbalanced-quote": raw_chunked(b"5;a=\"b\r\nhello\r\n0\r\n\r\n"),
    "400-chunk-ext-quote-escapes-end": raw_chunked(b"5;a=\"b\\\"\r\nhello\r\n0\r\n\r\n"),
    "400-chunk-ext-empty-value": raw_chunked(b"5;a=\r\nhello\r\n0\r\n\r\n"),
    "400-chunk-ext-value-not-token": raw_chunked(b"5;a=b@c\r\nhello\r\n0\r\n\r\n"),
    "400-chunk-ext-trailing-space": raw_chunked(b"5;a=b \r\nhello\r\n0\r\n\r\n"),
    "400-chunk-size-trailing-space": raw_chunked(b"5 \r\nhello\r\n0\r\n\r\n"),
    "400-last-chunk-trailing-space": raw_chunked(b"5\r\nhello\r\n0 \r\n\r\n"),
    "400-chunk-size-plus": raw_chunked(b"+5\r\nhello\r\n0\r\n\r\n"),
    "400-chunk-size-0x": raw_chunked(b"0x5\r\nhello\r\n0\r\n\r\n"),
    "400-chunk-size-leading-space": raw_chunked(b" 5\r\nhello\r\n0\r\n\r\n"),
    "413-chunk-size-17-hex-digits": raw_chunked(b"10000000000000000\r\nx\r\n0\r\n\r\n"),
    "413-chunk-size-16-f": raw_chunked(b"ffffffffffffffff\r\nx\r\n0\r\n\r\n"),
    # ---- an invalid start is refused as soon as it arrives: the rest never comes
    "400-first-field-folded-unfinished": b"GET / HTTP/1.1\r\n Host: a",
    "400-first-field-folded-tab-unfinished": b"GET / HTTP/1.1\r\n\tHost: a",
    "400-version-leading-zero-unfinished": b"GET / HTTP/01.1\r\nHost: a",
    "400-version-leading-zero": req(b"GET / HTTP/01.1", b"Host: a"),
    "400-method-not-token-unfinished": b"GE(T / HT",
    "400-tls-client-hello": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    "400-field-name-space-unfinished": b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: v",
    "400-field-value-ctl-unfinished": b"GET / HTTP/1.1\r\nHost: a\r\nA: b\x01c",
    "400-bare-cr-unfinished": b"GET / HTTP/1.1\r\nHost: a\r\nA: b\rc",
    "400-target-char-unfinished": b"GET /a\"b",
    "400-pct-unfinished": b"GET /%zz",
    "400-binary-garbage": bytes(range(256)),
    # ---- where libhttp-parser and wharf differ by design (DIFFERENCES.md)
    "differ-connect-with-body": req(b"CONNECT a:443 HTTP/1.1", b"Host: a:443",
                                    b"Content-Length: 5", body=b"hello") + get(),
    "differ-cr-ends-header-section": b"GET / HTTP/1.1\r\nHost: a\r\n\rX",
    "differ-cl-htab": req(b"POST /echo HTTP/1.1", b"Host: a", b"Content-Length: 3\t",
                          body=b"abc"),
    "differ-te-empty-element": req(b"POST /echo HTTP/1.1", b"Host: a",
                                   b"Transfer-Encoding: , chunked,", body=b"1\r\nx\r\n0\r\n\r\n"),
    "differ-cr-ends-trailer-section": raw_chunked(b"1\r\nx\r\n0\r\nX: 1\r\n\rZ"),
    "differ-trailer-content-length": raw_chunked(b"1\r\nx\r\n0\r\nContent-Length: x\r\n\r\n"),
    "differ-line-not-ended": get() + b"Gtp",
    "differ-lowercase-method": req(b"get / HTTP/1.1", b"Host: a"),
    # ---- other errors
    "413-content-length": req(b"POST /echo HTTP/1.1", b"Host: a", b"Content-Length: 2000000"),
    "413-chunk-size": raw_chunked(b"fffffffffffffffffff\r\n"),
    "413-chunk-over-1mib": raw_chunked(b"100001\r\n" + b"z" * 16),
    "417-expect-other": req(b"POST /echo HTTP/1.1", b"Host: a", b"Expect: 200-ok",
                            b"Content-Length: 0"),
    "431-too-many-headers": req(b"GET / HTTP/1.1", b"Host: a",
                                *[b"X-%d: v" % i for i in range(64)]),
    "431-header-block-too-big": b"GET / HTTP/1.1\r\nHost: a\r\n" + BIG_HEADERS + b"\r\n",
    "431-no-end-of-headers": b"GET / HTTP/1.1\r\nX: " + b"y" * 9000,
    "431-long-request-line": b"GET /" + b"p" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n",
    "431-empty-lines-forever": b"\r\n" * 4200,
    "431-trailers-too-big": raw_chunked(b"0\r\n" + b"".join(b"T%d: %s\r\n" % (i, b"t" * 200)
                                                            for i in range(45)) + b"\r\n"),
    "400-te-gzip-only": req(b"POST /echo HTTP/1.1", b"Host: a", b"Transfer-Encoding: gzip"),
    "501-te-gzip-chunked": req(b"POST /echo HTTP/1.1", b"Host: a",
                               b"Transfer-Encoding: gzip, chunked", body=b"0\r\n\r\n"),
    "501-te-gzip-then-chunked-two-lines": req(b"POST /echo HTTP/1.1", b"Host: a",
                                              b"Transfer-Encoding: gzip",
                                              b"Transfer-Encoding: chunked", body=b"0\r\n\r\n"),
    "400-te-chunked-then-gzip-two-lines": req(b"POST /echo HTTP/1.1", b"Host: a",
                                              b"Transfer-Encoding: chunked",
                                              b"Transfer-Encoding: gzip", body=b"0\r\n\r\n"),
    "400-te-gzip-chunked-gzip": req(b"POST /echo HTTP/1.1", b"Host: a",
                                    b"Transfer-Encoding: gzip, chunked, gzip", body=b"0\r\n\r\n"),
    "400-te-chunked-twice-one-line": req(b"POST /echo HTTP/1.1", b"Host: a",
                                         b"Transfer-Encoding: chunked, chunked",
                                         body=b"0\r\n\r\n"),
    "400-te-chunked-twice": req(b"POST /echo HTTP/1.1", b"Host: a", b"Transfer-Encoding: chunked",
                             b"Transfer-Encoding: chunked", body=b"0\r\n\r\n"),
    "505-http20": req(b"GET / HTTP/2.0", b"Host: a"),
    "505-http09": req(b"GET / HTTP/0.9"),
    "505-http30-after-good": get() + req(b"GET / HTTP/3.0", b"Host: a"),
}


def frame(payload):
    return len(payload).to_bytes(4, "big") + payload


FRAME = {
    "empty-frame": frame(b""),
    "one-frame": frame(b"hello"),
    "pipelined": frame(b"a") + frame(b"") + frame(b"bc") + frame(b"x" * 40),
    "binary-payload": frame(bytes(range(256))),
    "nul-payload": frame(b"\x00" * 10),
    "partial-header": b"\x00\x00",
    "partial-payload": b"\x00\x00\x00\x10abc",
    "good-then-partial": frame(b"ok") + b"\x00\x00\x01",
    "length-max-u32": b"\xff\xff\xff\xff" + b"x" * 8,
    "length-1mib": (1 << 20).to_bytes(4, "big") + b"y" * 8,
    "length-1mib-plus-1": ((1 << 20) + 1).to_bytes(4, "big"),
    "length-2gib": (1 << 31).to_bytes(4, "big"),
    "good-then-too-long": frame(b"fine") + b"\x7f\x00\x00\x00",
    "lengths-near-small-limits": b"".join(frame(b"z" * n) for n in (15, 16, 17, 31, 32, 33, 47)),
}

LINE = {
    "one-line": b"hello\n",
    "crlf-line": b"hello\r\n",
    "empty-lines": b"\n\n\n",
    "pipelined": b"a\nbb\r\nccc\n\ndddd\n",
    "no-newline": b"no newline yet",
    "good-then-partial": b"done\npart",
    "nul-bytes": b"a\x00b\n\x00\n",
    "binary": bytes(range(256)),
    "lower-to-upper": b"the quick brown fox jumps over the lazy dog 0123 \xe9\n",
    "long-line": b"L" * 5000 + b"\n",
    "long-no-newline": b"M" * 5000,
    "lengths-near-small-limits": b"".join(b"q" * n + b"\n" for n in (15, 16, 17, 31, 32, 33, 47)),
    "cr-only": b"a\rb\rc\r",
}

RAW = {
    "text": b"hello, raw world",
    "binary": bytes(range(256)),
    "lower-to-upper": b"abcxyz ABC {|}~ \x80\xe9\xff",
    "single-byte": b"x",
    "nul-bytes": b"\x00" * 64,
    "larger": bytes((i * 7) & 0xff for i in range(3000)),
}


V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(ver_cmd, fam, body):
    """A PROXY protocol version-2 header: signature, command, family, length, body."""
    return V2_SIG + bytes([ver_cmd, fam]) + len(body).to_bytes(2, "big") + body


V2_INET = bytes([192, 0, 2, 1, 198, 51, 100, 7, 0xdc, 0x04, 0x01, 0xbb])
V2_INET6 = bytes(15) + b"\x01" + bytes(15) + b"\x02" + b"\x12\x34\x00\x50"
V2_UNIX = b"/run/c.sock".ljust(108, b"\x00") + b"/run/s.sock".ljust(108, b"\x00")
TLVS = b"\x01\x00\x02h2" + b"\x04\x00\x00" + b"\x05\x00\x03abc"

PROXY = {
    "v1-tcp4": b"PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\nGET / HTTP/1.1\r\n\r\n",
    "v1-tcp6": b"PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 0 65535\r\n",
    "v1-unknown": b"PROXY UNKNOWN\r\n",
    "v1-unknown-rest": b"PROXY UNKNOWN ffff::1 ::1 1 2\r\n",
    "v1-longest": b"PROXY UNKNOWN " + b"x" * 91 + b"\r\n",
    "v1-too-long": b"PROXY UNKNOWN " + b"x" * 92 + b"\r\n",
    "v1-bare-lf": b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
    "v1-bad-port": b"PROXY TCP4 1.2.3.4 5.6.7.8 1 080\r\n",
    "v1-bad-addr": b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",
    "v1-partial": b"PROXY TCP4 1.2.3.4 5.6",
    "v2-inet": v2(0x21, 0x11, V2_INET) + b"after",
    "v2-inet-tlvs": v2(0x21, 0x11, V2_INET + TLVS),
    "v2-inet6": v2(0x21, 0x21, V2_INET6 + TLVS),
    "v2-unix": v2(0x21, 0x31, V2_UNIX),
    "v2-local": v2(0x20, 0x00, b""),
    "v2-local-body": v2(0x20, 0x11, V2_INET),
    "v2-unspec": v2(0x21, 0x00, b"\x04\x00\x00"),
    "v2-short-length": v2(0x21, 0x21, V2_INET),
    "v2-tlv-overrun": v2(0x21, 0x11, V2_INET + b"\x01\x00\x09ab"),
    "v2-bad-version": v2(0x11, 0x11, V2_INET),
    "v2-partial": v2(0x21, 0x11, V2_INET)[:20],
    "garbage": b"GET / HTTP/1.1\r\n\r\n",
}


def resp(status, *fields, body=b"", head=False):
    """A response stream for fuzz_http_resp: first byte 1 when the requests were HEAD."""
    out = b"HTTP/1.1 " + status + CRLF
    for f in fields:
        out += f + CRLF
    return (b"\x01" if head else b"\x00") + out + CRLF + body


HTTP_RESP = {
    "content-length": resp(b"200 OK", b"Content-Length: 5", body=b"hello"),
    "pipelined": resp(b"200 OK", b"Content-Length: 2", body=b"ok")[0:] +
    resp(b"404 Not Found", b"Content-Length: 3", body=b"nop")[1:] +
    resp(b"204 No Content")[1:],
    "chunked": resp(b"200 OK", b"Transfer-Encoding: chunked",
                    body=b"5;ext=1\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\nT: x\r\n\r\n"),
    "http10-until-close": b"\x00HTTP/1.0 200 OK\r\nServer: y\r\n\r\nbody until the close",
    "http10-keep-alive": b"\x00HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
    b"Content-Length: 1\r\n\r\nx",
    "connection-close": resp(b"200 OK", b"Connection: close", b"Content-Length: 1", body=b"x"),
    "head": resp(b"200 OK", b"Content-Length: 100", head=True) +
    resp(b"200 OK", b"Content-Length: 100")[1:],
    "interim": resp(b"100 Continue")[0:] + resp(b"200 OK", b"Content-Length: 0")[1:],
    "not-modified": resp(b"304 Not Modified", b"Content-Length: 10"),
    "te-and-cl": resp(b"200 OK", b"Content-Length: 3", b"Transfer-Encoding: chunked",
                      body=b"abc"),
    "cl-differs": resp(b"200 OK", b"Content-Length: 3", b"Content-Length: 4"),
    "bare-lf": b"\x00HTTP/1.1 200 OK\nContent-Length: 0\n\n",
    "fold": resp(b"200 OK", b"X: a", b" b", b"Content-Length: 0"),
    "bad-chunk": resp(b"200 OK", b"Transfer-Encoding: chunked", body=b"zz\r\n"),
    "upgrade": resp(b"101 Switching Protocols", b"Upgrade: x"),
    "no-reason": b"\x00HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
    "nginx-like": resp(b"200 OK", b"Server: nginx", b"Date: Thu, 03 Dec 2026 13:00:00 GMT",
                       b"Content-Type: text/html", b"Content-Length: 12",
                       b"Connection: keep-alive", b"Accept-Ranges: bytes", body=b"<html></html>"[:12]),
}


def write(corpus, target, seeds):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if f.startswith("seed-"):
            os.remove(os.path.join(d, f))
    for name, data in seeds.items():
        with open(os.path.join(d, "seed-" + name), "wb") as f:
            f.write(data)
    return len(seeds)


def main():
    corpus = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__),
                                                                "corpus")
    for target, seeds in (("http", HTTP), ("frame", FRAME), ("line", LINE), ("raw", RAW),
                           ("proxy", PROXY), ("http_resp", HTTP_RESP)):
        print("%s: %d seeds" % (target, write(corpus, target, seeds)))


if __name__ == "__main__":
    main()
