#!/usr/bin/python3
# Lab stand-in for the VR's password server (cloud-password-server@<address>[,<allowed>]): it
# listens on <address>:8080, keeps its token in /tmp/passwdsrvrtoken (written at start when
# absent) and answers a VM's `DomU_Request: send_my_password` with `saved_password`. It logs the
# way the real one does, through syslog (user.info): the router's rsyslogd writes it to
# /var/log/messages.
import http.server
import os
import secrets
import socketserver
import sys
import syslog

TOKEN_FILE = "/tmp/passwdsrvrtoken"
PORT = 8080


def log(message):
    syslog.syslog(syslog.LOG_INFO, message)


def ensure_token():
    try:
        with open(TOKEN_FILE) as handle:
            if handle.read().strip():
                return
    except OSError:
        pass
    with open(TOKEN_FILE, "w") as handle:
        handle.write(secrets.token_hex(16))
    os.chmod(TOKEN_FILE, 0o600)


class Server(http.server.ThreadingHTTPServer):
    def server_bind(self):
        # HTTPServer.server_bind looks the address up in DNS (getfqdn), which waits out a resolver
        # timeout in a lab router whose upstream DNS is not reachable: bind without the lookup.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "CloudStack Password Server"
    sys_version = "4.x"

    def do_GET(self):
        request = self.headers.get("DomU_Request")
        if request in ("send_my_password", "saved_password"):
            self.send_response(200)
            self.send_header("content-type", "text/plain")
            self.end_headers()
            self.wfile.write(b"saved_password")
            log(f"serve_password: requested password not found for {self.client_address[0]}")
            return
        self.send_response(400)
        self.end_headers()
        self.wfile.write(b"bad_request")
        log(f"serve_password: bad_request from IP {self.client_address[0]}")

    def log_message(self, format, *args):
        return


def main():
    address = sys.argv[1].split(",")[0] if len(sys.argv) > 1 else "127.0.0.1"
    try:
        server = Server((address, PORT), Handler)
    except OSError as error:
        log(f"serve_password hit exception {error} -- died")
        raise SystemExit(1) from None
    ensure_token()
    log(f"serve_password running on {address}:{PORT}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        log("serve_password shutting down")


main()
