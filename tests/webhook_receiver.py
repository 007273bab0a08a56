"""A webhook receiver for the tests: a real process on loopback that verifies every delivery
with the ``standardwebhooks`` package (not with opstatus's code) and logs it.

``python -m tests.webhook_receiver PORT LOG SECRET [SECRET...]``. Each request is answered by
its path: ``/ok`` 200; ``/flaky`` 500 on the first attempt of each ``webhook-id``, then 200;
``/hang`` never answers (but logs). A request whose signature no secret verifies gets 401. Every
request is logged as one JSON line: its webhook-id, verified or not, the event, the answer.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main() -> None:
    port, log_path, *secrets = sys.argv[1:]
    receivers = [Webhook(secret) for secret in secrets]
    seen: set[str] = set()
    lock = threading.Lock()
    log = Path(log_path).open("a", buffering=1)  # noqa: SIM115 - open for the process's life

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            payload: Any = None
            for receiver in receivers:
                try:
                    payload = receiver.verify(body, headers)
                    break
                except WebhookVerificationError:
                    continue
            message_id = headers.get("webhook-id", "")
            with lock:
                first = message_id not in seen
                seen.add(message_id)
            if payload is None:
                status = 401
            elif self.path == "/hang":
                status = 0  # logged, never answered
            elif self.path == "/flaky" and first:
                status = 500
            else:
                status = 200
            data = (payload or {}).get("data", {})
            entry = {
                "id": message_id,
                "path": self.path,
                "verified": payload is not None,
                "type": (payload or {}).get("type"),
                "operation": data.get("operation", {}).get("name"),
                "sequence": data.get("sequence"),
                "eventId": data.get("id"),
                "answered": status,
                "at": time.time(),
            }
            with lock:
                log.write(json.dumps(entry) + "\n")
            if not status:
                time.sleep(3600)
                return
            self.send_response(status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", int(port)), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
