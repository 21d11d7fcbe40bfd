"""`python -m core.inference`: the warm inference worker (core/inference/worker.py)."""
import sys

from core.inference.worker import main

sys.exit(main())
