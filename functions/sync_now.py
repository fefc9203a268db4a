""""Sync now" (issue 12): an event, a meeting or the whole site brought in line with Outlook, both ways.
Takes `{"event": id}`, `{"meeting": id}`, nothing (the site), an item, or RAPID's remote-action envelope
(a "Sync with Outlook now" button: docs/operations.md); persists the work and answers 202 with job ids; a
whole-site one says whether it was merged into one already waiting and when it starts."""

import azure.functions as func

from .http import answers, json_response, services, given_site_token
from .site_webhooks import PREFIX

bp = func.Blueprint()


@bp.route(route=f"{PREFIX}/sync", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@answers
def sync_now(req: func.HttpRequest) -> func.HttpResponse:
    from shared.intake.webhooks import check_site_token, known_site
    from shared.jobs.site_sync import request_site_sync
    from shared.jobs.sync_now import sync_now_tasks
    from shared.model.audit import SYNC_NOW, because

    svc = services()
    tenant, site = req.route_params.get("tenant"), req.route_params.get("site")
    check_site_token(svc.settings, known_site(svc.settings, tenant, site), given_site_token(req))
    tasks = because(SYNC_NOW, sync_now_tasks(svc.settings, tenant, site, req.get_body()))
    if [t["op"] for t in tasks] == ["sync.site"]:  # merged into one waiting, or run when the site's window allows
        return json_response(202, request_site_sync(svc, tasks[0]["site"], tasks[0]))
    jobs = svc.queue.enqueue(tasks)
    return json_response(202, {"accepted": len(tasks), "jobs": jobs})
