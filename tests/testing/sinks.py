#!/usr/bin/python3
"""Receivers on loopback for notifier tests.

  sinks.py smtp FOLDER [--cert C --key K] [--user U --password P]
  sinks.py http FOLDER [--fail-first N] [--gate N]

Binds 127.0.0.1 on a free port, prints "port N" on stdout, and stores
every message it receives as a numbered file in FOLDER: the raw message
for SMTP (with the envelope in a .env file), a JSON object with status,
path, headers and body for HTTP. Both record the sender's port, which
tells the messages of one connection. HTTP keeps connections open
(HTTP/1.1) and answers 500 to the first N requests and 200 after that.
With --gate N it holds each request until N are in flight at once, or
for three seconds, whichever comes first, then lets every request
through; each request's file records how many were in flight when it
arrived ("in_flight"). Runs until killed.
"""
import argparse
import asyncio
import email
import email.policy
import http.server
import json
import os
import ssl
import sys
import threading


def store(folder, name, data):
    tmp = os.path.join(folder, name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, os.path.join(folder, name))


def parse_email(raw):
    """The parts of a message a test checks, read by Python's own parser."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    out = {k: str(msg[k] or "") for k in
           ("From", "Reply-To", "To", "Subject", "Message-ID", "Date",
            "X-Casework-Dedupe-Key", "X-Casework-Reference", "Content-Language")}
    out["content_type"] = msg.get_content_type()
    for part in msg.walk():
        if part.get_content_type() in ("text/plain", "text/html"):
            out[part.get_content_type()] = part.get_content()
    return out


def run_smtp(args):
    from aiosmtpd.smtp import SMTP, AuthResult

    counter = {"n": 0}

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            counter["n"] += 1
            n = "%04d" % counter["n"]
            store(args.folder, n + ".env", json.dumps(
                {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                 "peer_port": session.peer[1],
                 "tls": session.ssl is not None,
                 "authenticated": bool(session.authenticated)}).encode())
            store(args.folder, n + ".eml", envelope.original_content)
            store(args.folder, n + ".json", json.dumps(parse_email(envelope.original_content)).encode())
            return "250 Message accepted for delivery"

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (auth_data.login.decode() == args.user and
              auth_data.password.decode() == args.password)
        return AuthResult(success=ok)

    tls = None
    if args.cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.cert, args.key)

    def factory():
        return SMTP(Handler(), hostname="sink.test", tls_context=tls,
                    require_starttls=tls is not None,
                    authenticator=authenticator if args.user else None,
                    auth_required=bool(args.user), auth_require_tls=tls is not None)

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(factory, "127.0.0.1", 0))
    print("port", server.sockets[0].getsockname()[1], flush=True)
    loop.run_forever()


def run_http(args):
    lock = threading.Condition()
    state = {"n": 0, "in_flight": 0, "open": args.gate == 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                state["n"] += 1
                n = state["n"]
                state["in_flight"] += 1
                in_flight = state["in_flight"]
                if in_flight >= args.gate:
                    state["open"] = True
                    lock.notify_all()
                lock.wait_for(lambda: state["open"], timeout=3)
                state["open"] = True
            status = 500 if n <= args.fail_first else 200
            store(args.folder, "%04d.json" % n, json.dumps(
                {"status": status, "path": self.path, "peer_port": self.client_address[1],
                 "in_flight": in_flight,
                 "headers": {k.lower(): v for k, v in self.headers.items()},
                 "body": body.decode("utf-8")}).encode())
            with lock:
                state["in_flight"] -= 1
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print("port", server.server_address[1], flush=True)
    server.serve_forever()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=["smtp", "http"])
    p.add_argument("folder")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--gate", type=int, default=0)
    args = p.parse_args()
    os.makedirs(args.folder, exist_ok=True)
    run_smtp(args) if args.kind == "smtp" else run_http(args)


if __name__ == "__main__":
    sys.exit(main())
