"""DEV ONLY: fixed roles without HA (first master runs mfsmaster, others metaloggers)."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from mooseng import mfsconfig, settings
from mooseng.supervisor import Daemon


def daemons(node: str) -> list[Daemon]:
    layout = mfsconfig.Layout.from_settings()
    leader = node == list(settings.read("MOOSENG_MASTERS"))[0]
    if leader:
        mfsconfig.seed_empty_metadata(layout)
        d = Daemon("mfsmaster", ["mfsmaster", "-c", str(mfsconfig.MASTER_CFG), "-f", "start"])
    else:
        d = Daemon("mfsmetalogger", ["mfsmetalogger", "-c", str(mfsconfig.METALOGGER_CFG), "-f", "start"])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            ok = d.running() and (leader or self.path != "/leader")
            body = json.dumps({"node": node, "ok": ok}).encode()
            self.send_response(200 if ok else 503)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("0.0.0.0", int(settings.read("MOOSENG_API_PORT"))), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return [d]
