"""Start the review server: load (or make) the export, open the decision log, bind, print the URL."""

from __future__ import annotations

import ipaddress
import logging
import secrets
import socket
from collections.abc import Callable
from pathlib import Path

import uvicorn

from curate.errors import CurateError
from curate.review.export import export_is_current, export_review, read_plan
from curate.review.images import allowed_roots
from curate.review.plan import DEFAULT_BLOCK
from curate.review.server import create_app
from curate.review.source import default_export_dir, store_path
from curate.review.store import DecisionStore

logger = logging.getLogger(__name__)


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0 = any free one), or a one-line error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise CurateError(
            f"cannot listen on {host}:{port} ({error.strerror}); choose another --port"
        ) from None
    sock.listen(128)
    return sock


def serve(
    workdir: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    export_dir: Path | None = None,
    block: int = DEFAULT_BLOCK,
    budget: int | None = None,
    input_stage: str | None = None,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve the review page until interrupted; ``announce`` receives the URL with the token."""
    export_dir = Path(export_dir) if export_dir else default_export_dir(workdir)
    if not export_is_current(workdir, export_dir):
        # none yet, or its input stage was re-run since: decisions are kept (they key on image_id)
        announce(f"no current review export at {export_dir}: exporting now (without contact sheets)")
        export_review(workdir, export_dir, block, budget, input_stage, sheets=False)
    plan = read_plan(export_dir)
    if not ipaddress.ip_address(socket.gethostbyname(host)).is_loopback:
        logger.warning("serving review on %s: anyone who can reach it and has the token can decide", host)
    token = token or secrets.token_urlsafe(18)
    store = DecisionStore(store_path(workdir))
    app = create_app(workdir, plan, store, allowed_roots(workdir), token)
    sock = _bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    announce(f"review: http://{shown}:{sock.getsockname()[1]}/?token={token}")
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        store.close()
        sock.close()
