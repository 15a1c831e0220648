"""``curate review serve``: the review page on Starlette + uvicorn, bound to loopback, behind a token.

Every request must carry the token (``?token=`` or the ``X-Review-Token`` header), static files and images
included. Images are looked up by ``image_id`` among the images of the review plan and served as cached
thumbnails only when their real path lies inside the run's folders (:func:`curate.review.images.safe_path`).
Every decision is committed to the SQLite log before the answer goes back.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from curate.errors import CurateError
from curate.review.decisions import RULE, agreement
from curate.review.images import safe_path, thumbnail, thumbnail_path
from curate.review.plan import ReviewPlan
from curate.review.progress import Progress
from curate.review.store import IMAGE_DECISIONS, DecisionStore, Event

logger = logging.getLogger(__name__)

IMAGE_ID = re.compile(r"^[0-9a-f]{64}$")
STATIC = {"review.js": "text/javascript", "review.css": "text/css"}


COOKIE = "curate_review_token"


class TokenGate:
    """ASGI middleware: refuse every HTTP request that does not carry the run's token.

    The token comes as ``?token=`` (the printed URL), the ``X-Review-Token`` header (the page's API calls)
    or a strict same-site cookie that the page sets when opened with a valid ``?token=``, so the browser's
    own requests for the style sheet, script and thumbnails carry it too.
    """

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        query = request.query_params.get("token", "")
        given = query or request.headers.get("x-review-token") or request.cookies.get(COOKIE) or ""
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            await PlainTextResponse("missing or wrong token", status_code=403)(scope, receive, send)
            return
        if not query:
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: dict) -> None:
            if message["type"] == "http.response.start":
                cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode())]
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def _static(name: str) -> Path:
    return Path(str(resources.files("curate.review").joinpath("static", name)))


class ReviewApp:
    """The routes of the review page over one plan and one decision store."""

    def __init__(self, workdir: Path, plan: ReviewPlan, store: DecisionStore, roots: list[Path]) -> None:
        self.workdir, self.plan, self.store, self.roots = Path(workdir), plan, store, roots
        self.progress = Progress(plan)
        self.paths = dict(zip(plan.items["image_id"], plan.items["image_path"], strict=True))
        for side in ("a", "b"):
            self.paths.update(zip(plan.pairs[f"image_{side}"], plan.pairs[f"path_{side}"], strict=True))

    def routes(self) -> list[Route]:
        """Every route of the page."""
        return [
            Route("/", self.page),
            Route("/static/{name}", self.static),
            Route("/img/{image_id}", self.image),
            Route("/api/state", self.state),
            Route("/api/block", self.block),
            Route("/api/agreement", self.agreement),
            Route("/api/decide", self.decide, methods=["POST"]),
            Route("/api/identity", self.identity, methods=["POST"]),
            Route("/api/pair", self.pair, methods=["POST"]),
            Route("/api/undo", self.undo, methods=["POST"]),
            Route("/api/position", self.position, methods=["POST"]),
        ]

    async def page(self, request: Request) -> Response:
        """The single page."""
        return HTMLResponse(_static("review.html").read_text())

    async def static(self, request: Request) -> Response:
        """The page's script and style sheet, by exact name only."""
        name = request.path_params["name"]
        if name not in STATIC:
            return PlainTextResponse("not found", status_code=404)
        return FileResponse(_static(name), media_type=STATIC[name])

    async def image(self, request: Request) -> Response:
        """A thumbnail of an image of this review plan; anything else is 404."""
        image_id = request.path_params["image_id"]
        path = safe_path(self.paths.get(image_id), self.roots) if IMAGE_ID.match(image_id) else None
        thumb = None
        if path is not None:  # decoding a new thumbnail runs on a worker thread, off the event loop
            cached = thumbnail_path(self.workdir, image_id)
            thumb = (
                cached
                if cached.exists()
                else await run_in_threadpool(thumbnail, self.workdir, image_id, path)
            )
        if thumb is None:
            return PlainTextResponse("no such image in this review", status_code=404)
        # a thumbnail is a few kB: read it in place rather than hop to a worker thread per file
        headers = {"Cache-Control": "private, max-age=3600"}
        return Response(thumb.read_bytes(), media_type="image/jpeg", headers=headers)

    async def state(self, request: Request) -> Response:
        """Identities with progress, overall progress, reviewers, and where this reviewer was."""
        reviewer = request.query_params.get("reviewer", "")
        return JSONResponse(
            {
                **self.progress.summary(self.store.decided(), reviewer),
                "reviewers": self.store.reviewers(),
                "position": self.store.position(reviewer) if reviewer else None,
                "block_size": self.plan.block,
                "rule": RULE,
            }
        )

    async def block(self, request: Request) -> Response:
        """One block of one identity: items with everyone's decisions, the identity, its pairs."""
        started = time.perf_counter()
        query = request.query_params
        try:
            number = int(query.get("block", "1"))
        except ValueError:
            return JSONResponse({"error": "block must be a number"}, status_code=400)
        found = self.progress.block(query.get("identity", ""), number)
        if found is None:
            return JSONResponse({"error": "no such identity or block"}, status_code=404)
        identity, items = found
        decisions = self.store.image_decisions([i["image_id"] for i in items])
        reviewer = query.get("reviewer", "")
        verdicts, pair_choices = self.store.choices(reviewer)
        for item in items:
            everyone = decisions.get(item["image_id"], {})
            item["decision"] = everyone.get(reviewer)
            item["others"] = {r: d for r, d in everyone.items() if r != reviewer}
        pairs = self.progress.pairs(identity["identity_id"])
        for pair in pairs:
            pair["choice"] = pair_choices.get("|".join(sorted((pair["image_a"], pair["image_b"]))))
        return JSONResponse(
            {
                "identity": identity,
                "block": number,
                "items": items,
                "pairs": pairs,
                "verdict": verdicts.get(identity["identity_id"]),
                "server_ms": round(1000 * (time.perf_counter() - started), 2),
            }
        )

    async def agreement(self, request: Request) -> Response:
        """Per-block agreement and Cohen's kappa between reviewers who decided the same images."""
        table = agreement(self.store.events(), self.plan.items)
        return JSONResponse(
            {"rule": RULE, "blocks": table.astype(object).where(table.notna(), None).to_dict("records")}
        )

    async def _record(self, events: list[Event]) -> Response:
        try:
            stored = self.store.record(events)
        except CurateError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse({"stored": stored})

    async def decide(self, request: Request) -> Response:
        """Image decisions (one or a batch, e.g. 'accept the rest of the block'): one undo step."""
        body = await _json(request)
        reviewer = str(body.get("reviewer", ""))
        events = []
        for item in body.get("decisions", []):
            image_id, decision = str(item.get("image_id", "")), str(item.get("decision", ""))
            if image_id not in self.progress.identity_of or decision not in IMAGE_DECISIONS:
                return JSONResponse({"error": f"not a planned image or decision: {image_id} {decision}"}, 400)
            identity_id = self.progress.identity_of[image_id]
            events.append(Event(decision, reviewer, image_id, identity_id, note=str(item.get("note", ""))))
        return await self._record(events)

    async def identity(self, request: Request) -> Response:
        """An identity verdict: identity_keep, identity_drop or identity_merge (with the twin as target)."""
        body = await _json(request)
        identity_id = str(body.get("identity_id", ""))
        if identity_id not in self.progress.identities:
            return JSONResponse({"error": "not a planned identity"}, status_code=400)
        event = Event(
            str(body.get("decision", "")),
            str(body.get("reviewer", "")),
            identity_id=identity_id,
            target=str(body.get("target", "")),
            note=str(body.get("note", "")),
        )
        if event.decision not in ("identity_keep", "identity_drop", "identity_merge"):
            return JSONResponse(
                {"error": "decision must be identity_keep, identity_drop or identity_merge"}, 400
            )
        return await self._record([event])

    async def pair(self, request: Request) -> Response:
        """A duplicate pair: dup_keep (image_id = keeper, target = the other) or dup_both."""
        body = await _json(request)
        image_id, target = str(body.get("image_id", "")), str(body.get("target", ""))
        decision = str(body.get("decision", ""))
        if not self.progress.is_pair(image_id, target) or decision not in ("dup_keep", "dup_both"):
            return JSONResponse({"error": "not a planned pair, or decision not dup_keep/dup_both"}, 400)
        identity_id = self.progress.identity_of.get(image_id, "")
        reviewer = str(body.get("reviewer", ""))
        return await self._record([Event(decision, reviewer, image_id, identity_id, target)])

    async def undo(self, request: Request) -> Response:
        """Undo the reviewer's last step (one decision or one batch)."""
        body = await _json(request)
        return JSONResponse({"undone": self.store.undo(str(body.get("reviewer", "")))})

    async def position(self, request: Request) -> Response:
        """Remember where the reviewer is."""
        body = await _json(request)
        reviewer = str(body.get("reviewer", "")).strip()
        if not reviewer or str(body.get("identity_id", "")) not in self.progress.identities:
            return JSONResponse({"error": "give a reviewer and a planned identity"}, status_code=400)
        block = body.get("block", 1)
        self.store.save_position(
            reviewer, str(body["identity_id"]), int(block), str(body.get("image_id", ""))
        )
        return JSONResponse({"saved": True})


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def create_app(
    workdir: Path, plan: ReviewPlan, store: DecisionStore, roots: list[Path], token: str
) -> ASGIApp:
    """The review page as an ASGI app, every route behind ``token``."""
    routes = ReviewApp(workdir, plan, store, roots).routes()
    return TokenGate(Starlette(routes=routes), token)
