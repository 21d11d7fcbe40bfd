"""Entry point: `python flask_app.py [--host 127.0.0.1] [--port 5000]`.

For now the web process serves a placeholder page and the API comes with the web-app issue; the
engine is usable from the CLI (`python -m core.cli`). The web process never imports torch.
Binds 127.0.0.1 by default and refuses another host (the access-token mode comes with the web app).
"""
from __future__ import annotations

import argparse
import ipaddress
import sys

from flask import Flask

LOOPBACK_NAMES = ("localhost",)


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(config or {})
    from routes.pages import bp as pages_bp
    app.register_blueprint(pages_bp)
    return app


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="GRPO Studio web app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args(argv)
    if not is_loopback(args.host):
        print(f"refusing to listen on {args.host}: only loopback addresses are allowed until "
              f"access tokens exist", file=sys.stderr)
        return 2
    create_app().run(host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
