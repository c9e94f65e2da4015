"""The static file server of kinto-attachment's files, in the test stack and the bench, shaped as
the CDN serves them: HTTP/1.1 with connections kept alive, and TCP_NODELAY.

`python -m http.server` answers HTTP/1.0 and closes the connection after each file, so a client
pays a connection per file. With `--protocol HTTP/1.1` it keeps them, but its header and body
writes then wait on delayed ACKs (Nagle's algorithm): about 40 ms a file.

Usage: files_server.py DIRECTORY PORT (on 127.0.0.1).
"""

import functools
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer


class Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True


def main():
    directory, port = sys.argv[1], int(sys.argv[2])
    server = ThreadingHTTPServer(("127.0.0.1", port), functools.partial(Handler, directory=directory))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
