#!/usr/bin/env python3
"""A tiny HTTPS webhook receiver for scripts/build-images' image checks.

Usage: https_server.py CERT KEY PORT_FILE LOG_FILE
Listens on 127.0.0.1 (a free port, written to PORT_FILE once listening), answers every POST
with 200 and appends "<path> <body bytes>" to LOG_FILE, so the check can tell which of the
router's test deliveries (by /etc/hosts or by DNS) arrived.
"""
import http.server
import ssl
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    """Accepts any POST; the check only needs to know it arrived over TLS."""

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        with open(LOG_FILE, "a", encoding="utf-8") as log:
            log.write(f"{self.path} {len(body)}\n")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, fmt, *args):
        # Quiet: the check prints what matters.
        pass


if __name__ == "__main__":
    cert, key, port_file, LOG_FILE = sys.argv[1:5]
    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    with open(port_file, "w", encoding="utf-8") as f:
        f.write(str(server.server_address[1]))
    server.serve_forever()
