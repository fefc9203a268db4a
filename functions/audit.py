"""The audit trail for a customer's SIEM (docs/operations.md, "The audit trail"), admin level (the master key
only) like the other operators' routes: `GET ops/audit?site=tenant/site&since=…[&until&item&limit&after]`
answers JSON lines, one write the app made per line, oldest first, with `X-Continuation` when more remain
(pass it back as `after`). A bad parameter answers 400 naming it."""

import azure.functions as func

from .http import answers, services

bp = func.Blueprint()


@bp.route(route="ops/audit", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
@answers
def audit_trail(req: func.HttpRequest) -> func.HttpResponse:
    from shared.ops.audit_trail import audit_page  # imported on use: keeps cold start light

    body, continuation = audit_page(services(), dict(req.params))
    return func.HttpResponse(body, status_code=200, mimetype="application/x-ndjson", charset="utf-8",
                             headers={"Content-Type": "application/x-ndjson; charset=utf-8",
                                      **({"X-Continuation": continuation} if continuation else {})})
