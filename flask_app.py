"""Entry point: `python flask_app.py [--host 127.0.0.1] [--port 5000] [--token T] [--root DIR]
[--max-upload-mb N] [--trust-remote-code]`.

Builds the app (`create_app`) and serves it with Flask-SocketIO in threading mode. Binds 127.0.0.1
by default; another address is served only with an access token (given, or generated and printed at
start, like Jupyter). Requests are limited in size (the upload limit plus form overhead) and forms
in fields and field size. The secret key is per install, in `<root>/.secret_key` with mode 0600.
Code shipped with a model runs only when the server is started with `--trust-remote-code` (the
workers inherit the choice through GRPO_STUDIO_TRUST_REMOTE_CODE). The web process never imports
torch: training runs in worker processes (services/jobs.py).
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

from core.models import REMOTE_CODE_ENV

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
        "MAX_FORM_MEMORY_SIZE": MB,    # a form's text fields (files are streamed to disk)
        "MAX_FORM_PARTS": 100,
        "TRUST_REMOTE_CODE": False,
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
    if not app.config.get("SECRET_KEY"):  # Flask's defaults hold SECRET_KEY = None
        app.config["SECRET_KEY"] = secret_key(Path(app.config["ROOT"]))
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_UPLOAD_BYTES"] + MB  # form overhead
    app.url_map.merge_slashes = False  # `//x` is not found, never redirected to another path
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
    """A per-install secret, created once with mode 0600 (an older, wider mode is narrowed)."""
    path = root / ".secret_key"
    if not path.is_file():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    elif path.stat().st_mode & 0o077:
        path.chmod(0o600)
    return path.read_text().strip()


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def required_token(host: str, token: str | None) -> str | None:
    """The access token to serve `host` with: the one given; on a non-loopback address without
    one, a new random one (never no token there)."""
    if token or is_loopback(host):
        return token or None
    return secrets.token_urlsafe(24)


def allow_remote_code(allowed: bool) -> None:
    """Tell the worker processes (through their environment) whether model code may run."""
    if allowed:
        os.environ[REMOTE_CODE_ENV] = "1"
    else:
        os.environ.pop(REMOTE_CODE_ENV, None)


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
    parser.add_argument("--trust-remote-code", action="store_true",
                        default=os.environ.get(REMOTE_CODE_ENV) == "1",
                        help="let configs load models that run their own code "
                             "(model.trust_remote_code); off by default")
    args = parser.parse_args(argv)
    token = required_token(args.host, args.token)
    allow_remote_code(args.trust_remote_code)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request is noise here
    app = create_app({"ROOT": args.root, "ACCESS_TOKEN": token,
                      "MAX_UPLOAD_BYTES": args.max_upload_mb * MB,
                      "TRUST_REMOTE_CODE": args.trust_remote_code})
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
