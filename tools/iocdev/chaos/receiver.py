"""A signed-webhook receiver that logs every delivery: ``python -m iocdev.chaos.receiver``.

Runs as its own process, so a scenario can take it down and bring it back by pid. Each
POST is checked like a real receiver would (HMAC and freshness, ``alerts.webhook.verify``)
and appended as one JSON line (``fingerprint``, ``seq``, ``to_state``, the delivery id,
``received_at``, ``verified``) to the log. Every request is answered 204, also those
that fail verification: the ledger counts them, the sender must not retry them.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from alerts.webhook import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify


def read_log(path: Path) -> list[dict[str, Any]]:
    """The deliveries a receiver logged (every run appends to the same file)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


def serve(port: int, log: Path, secret: bytes) -> None:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            ok = verify(secret, body, self.headers.get(TIMESTAMP_HEADER, ""),
                        self.headers.get(SIGNATURE_HEADER, ""))
            try:
                event = json.loads(body)
            except ValueError:
                event = {}
            entry = {"fingerprint": event.get("fingerprint"), "seq": event.get("seq"),
                     "to_state": event.get("to_state"), "kind": event.get("kind"),
                     "rule_id": event.get("rule_id"),
                     "delivery": self.headers.get(DELIVERY_HEADER),
                     "received_at": time.time(), "verified": ok}
            with lock, log.open("a") as out:
                out.write(json.dumps(entry) + "\n")
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--secret-file", type=Path, required=True)
    args = parser.parse_args(argv)
    serve(args.port, args.log, args.secret_file.read_bytes().strip())


if __name__ == "__main__":
    main()
