"""Entry point: `python flask_app.py [--host 127.0.0.1] [--port 5000] [--token T] [--root DIR]
[--max-upload-mb N]`.

Builds the app (`create_app`) and serves it with Flask-SocketIO in threading mode. Binds 127.0.0.1
by default; another address is served only with an access token (given, or generated and printed at
start, like Jupyter). The web process never imports torch: training runs in worker processes
(services/jobs.py).
"""
from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from flask import Flask

REPO_ROOT = Path(__file__).resolve().parent
LOOPBACK_NAMES = ("localhost",)
MB = 1 << 20


def default_settings(root: Path) -> dict[str, Any]:
    return {
        "ROOT": root,
        "OUTPUTS_DIR": root / "outputs",
        "SAVED_CONFIGS_DIR": root / "configs" / "saved",
        "UPLOADS_DIR": root / "uploads",
        "CUSTOM_REWARDS_DIR": root / "configs" / "rewards",
        "EXPORTS_DIR": root / "exports",
        "TEST_RESULTS_DIR": root / "test_results",
        "MAX_UPLOAD_BYTES": 2048 * MB,
        "ACCESS_TOKEN": None,
        "START_JOBS": True,            # tests that only read may leave the watcher off
        "SYSTEM_UPDATE_SECONDS": 2.0,  # 0: no system_update pushes
        "TEMPLATES_AUTO_RELOAD": False,
    }


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The app: defaults, then `config`; extensions bound, blueprints registered, jobs started."""
    # route modules first: their Socket.IO handlers must be known before init_app binds a server
    from routes import (configs, dataset_catalog, datasets, exports, models, rewards, system,
                        testing, training, wizard)
    from routes.common import register_error_handlers
    from routes.extensions import socketio
    from routes.i18n import init_i18n
    from routes.security import init_security
    from services.app import AppServices

    config = dict(config or {})
    app = Flask(__name__)
    app.config.from_mapping(default_settings(Path(config.get("ROOT", REPO_ROOT))))
    app.config.update(config)
    app.config.setdefault("SECRET_KEY", secret_key(Path(app.config["ROOT"])))
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_UPLOAD_BYTES"] + MB  # form overhead
    socketio.init_app(app, async_mode="threading")
    init_i18n(app)
    init_security(app)
    register_error_handlers(app)
    for module in (wizard, training, configs, datasets, dataset_catalog, models, rewards, exports,
                   testing, system):
        app.register_blueprint(module.bp)

    app.extensions["grpo_studio"] = AppServices.build(
        Path(app.config["OUTPUTS_DIR"]), Path(app.config["SAVED_CONFIGS_DIR"]),
        Path(app.config["UPLOADS_DIR"]), app.config["MAX_UPLOAD_BYTES"],
        publish=lambda event, payload, room: socketio.emit(event, payload, to=room),
        custom_rewards=Path(app.config["CUSTOM_REWARDS_DIR"]),
        exports=Path(app.config["EXPORTS_DIR"]),
        test_results=Path(app.config["TEST_RESULTS_DIR"]),
        protected=[str(app.config["ROOT"])])
    if app.config["START_JOBS"]:
        app.extensions["grpo_studio"].start()
    return app


def secret_key(root: Path) -> str:
    """A per-install secret, created once with mode 0600."""
    path = root / ".secret_key"
    if not path.is_file():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip()


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {value})")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="GRPO Studio web app")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--token", default=os.environ.get("GRPO_STUDIO_TOKEN"),
                        help="access token (needed, and generated when missing, on a "
                             "non-loopback host)")
    parser.add_argument("--root", type=Path, default=REPO_ROOT,
                        help="folder holding outputs/, uploads/ and configs/saved/")
    parser.add_argument("--max-upload-mb", type=positive_int,
                        default=os.environ.get("GRPO_STUDIO_MAX_UPLOAD_MB", "2048"),
                        help="largest dataset upload in MB (default 2048; larger gets 413)")
    args = parser.parse_args(argv)
    token = args.token
    if not is_loopback(args.host) and not token:
        token = secrets.token_urlsafe(24)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request is noise here
    app = create_app({"ROOT": args.root, "ACCESS_TOKEN": token,
                      "MAX_UPLOAD_BYTES": args.max_upload_mb * MB})
    from routes.extensions import socketio
    from routes.system import start_system_updates
    if app.config["SYSTEM_UPDATE_SECONDS"]:
        start_system_updates(app, app.config["SYSTEM_UPDATE_SECONDS"])
    shown = "localhost" if args.host in ("127.0.0.1", "::1") else args.host
    url = f"http://{shown}:{args.port}/" + (f"login?token={token}" if token else "")
    print(f"GRPO Studio: open {url}", flush=True)
    socketio.run(app, host=args.host, port=args.port, allow_unsafe_werkzeug=True,
                 use_reloader=False, log_output=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
