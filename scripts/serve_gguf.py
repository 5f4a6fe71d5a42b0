"""Serve a local GGUF model OpenAI-compatibly, for a character's own ``[llm]`` on this machine.

    python scripts/serve_gguf.py MODEL.gguf [--port 8011] [--alias NAME] [--threads 1] [--context 4096]

llama.cpp's own server (through ``xllamacpp``, which the ``local`` extra installs) on
``127.0.0.1:PORT``: ``POST /v1/chat/completions`` and ``/v1/completions``. Point a pack at it with
``[llm] base_url = "http://127.0.0.1:PORT/v1"`` and ``model = NAME``. It listens on loopback only and,
with ``--api-key-env``, wants that key. Stop it with Ctrl+C.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--alias", help="the model name clients send (default: the file's stem)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--context", type=int, default=4096)
    parser.add_argument("--api-key-env", metavar="VAR", help="env variable holding the key clients must send")
    args = parser.parse_args()
    if not args.model.is_file():
        print(f"error: no model file {args.model}", file=sys.stderr)
        return 2
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(args.model)
    alias = args.alias or args.model.stem
    params.model_alias = {alias}
    params.n_ctx = args.context
    params.n_parallel = 1
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.n_threads_http = 1
    params.hostnames = ["127.0.0.1"]
    params.port = args.port
    if args.api_key_env:
        params.api_keys = [os.environ[args.api_key_env]]
    server = xllamacpp.Server(params)
    print(f"serving {alias} at http://127.0.0.1:{args.port}/v1", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    del server
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
