"""Make ``tests.support`` importable however pytest is launched.

``python -m pytest`` puts the working directory on ``sys.path`` but the ``pytest`` script does
not, and the project is not installed into the virtualenv.  Once the project's pytest config
sets ``pythonpath = ["."]`` this shim becomes a harmless no-op.
"""

from __future__ import annotations

import sys
from pathlib import Path

_REPO_ROOT = str(Path(__file__).resolve().parents[2])
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)
