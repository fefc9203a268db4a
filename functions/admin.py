"""Operators' functions, admin level (the master key only). The site check (docs/product-rules.md, "The site
check") runs here with the app's real identity, Key Vault references and network. Routes may not start with
`admin/`: the Functions host keeps that prefix for itself, so they live under `ops/`."""

import json
import os

import azure.functions as func

from shared.model.audit import OPERATOR, acting_as

bp = func.Blueprint()


@bp.route(route="ops/site-check", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
def site_check(req: func.HttpRequest) -> func.HttpResponse:
    """Check every configured site (or `?site=tenant/site`); changes nothing. 200 with the report,
    JSON (`ok` false when something failed) or, with `?format=text`, the text the CLI prints."""
    from shared.ops.site_check import check_env, to_json, to_text  # imported on use: keeps cold start light

    report = check_env(os.environ, only=req.params.get("site") or None)
    if req.params.get("format") == "text":
        return func.HttpResponse(to_text(report), status_code=200, mimetype="text/plain", charset="utf-8",
                                 headers={"Content-Type": "text/plain; charset=utf-8"})  # ✓ ! ✗ need the charset
    return func.HttpResponse(json.dumps(to_json(report)), status_code=200, mimetype="application/json")


@bp.route(route="ops/status", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
def status_page(req: func.HttpRequest) -> func.HttpResponse:
    """The operator's status page: HTML, or JSON with `?format=json`; `?site=tenant/site` for one site, and
    `&item=<id>` for that item's audit trail (400 for an item id that cannot be one)."""
    from shared.ops.status_page import checked_item, render_html, status

    from .http import services

    only = req.params.get("site") or None
    svc = services()
    if only is not None and svc.settings.sites.get(only.lower()) is None:
        return func.HttpResponse(json.dumps({"error": "NotFound", "message": f"unknown site {only[:80]}"}),
                                 status_code=404, mimetype="application/json")
    item, refused = checked_item(only, req.params.get("item"))
    if refused:
        return func.HttpResponse(json.dumps({"error": "BadRequest", "message": refused}), status_code=400,
                                 mimetype="application/json")
    data = status(svc, only, item)
    if req.params.get("format") == "json":
        return func.HttpResponse(json.dumps(data), status_code=200, mimetype="application/json")
    return func.HttpResponse(render_html(data), status_code=200, mimetype="text/html", charset="utf-8",
                             headers={"Content-Type": "text/html; charset=utf-8"})


@bp.route(route="ops/rotate-client-states", methods=["POST"], auth_level=func.AuthLevel.ADMIN)
@acting_as(OPERATOR)
def rotate_client_states(req: func.HttpRequest) -> func.HttpResponse:
    """Give every Graph subscription (or `?site=tenant/site`'s) a new clientState: one queued job each,
    which makes the subscription again (Graph cannot change a clientState). 202 with how many."""
    from shared.subscriptions.rotation import queue_rotations

    from .http import services

    only = req.params.get("site") or None
    svc = services()
    if only is not None and svc.settings.sites.get(only.lower()) is None:
        return func.HttpResponse(json.dumps({"error": "NotFound", "message": f"unknown site {only[:80]}"}),
                                 status_code=404, mimetype="application/json")
    queued = queue_rotations(svc, only)
    return func.HttpResponse(json.dumps({"queued": queued}), status_code=202, mimetype="application/json")


@bp.route(route="ops/held-removals/release", methods=["POST"], auth_level=func.AuthLevel.ADMIN)
@acting_as(OPERATOR)
def release_held_removals(req: func.HttpRequest) -> func.HttpResponse:
    """Release the removals the mass-removal guard holds for `?site=tenant/site` (all of them, or
    `&item=<id>`'s): each is marked released and its job enqueued, which removes the Outlook event (or
    cancels the site item) unless the item came back meanwhile. 202 with how many and the job ids."""
    from shared.sync.removal_guard import release

    from .http import services

    only, item = req.params.get("site") or "", req.params.get("item") or None
    svc = services()
    site = svc.settings.sites.get(only.lower())
    if site is None:
        return func.HttpResponse(json.dumps({"error": "NotFound", "message": f"unknown site {only[:80]!r}"}),
                                 status_code=404, mimetype="application/json")
    if item is not None and svc.held.get(site.key, item) is None:
        return func.HttpResponse(json.dumps({"error": "NotFound", "message": f"item {item[:80]!r} of {site.key} has "
                                             "no held removal"}), status_code=404, mimetype="application/json")
    return func.HttpResponse(json.dumps(release(svc, site, item)), status_code=202, mimetype="application/json")
