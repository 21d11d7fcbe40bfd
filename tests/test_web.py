"""The placeholder web app answers, and the web process never imports torch."""
from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_web_process_serves_home_without_importing_torch():
    code = ("import sys; from flask_app import create_app; c = create_app().test_client(); "
            "r = c.get('/'); assert r.status_code == 200 and b'GRPO Studio' in r.data; "
            "import core, core.config, core.run_dir, rewards; "
            "core.config.validate_config({'rewards': [{'name': 'answer_correct'}]}); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_non_loopback_host_is_refused():
    from flask_app import main
    assert main(["--host", "0.0.0.0", "--port", "5999"]) == 2
