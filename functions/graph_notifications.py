"""Graph's change and lifecycle notifications (docs/product-rules.md, "The functions"): answer the validation
handshake; verify, persist and answer 202 well within Graph's 3 seconds; 5xx when nothing could be
persisted (docs/platform-facts.md, "Answer notifications within 3 seconds")."""

import azure.functions as func

from shared.intake.notifications import notification_tasks
from shared.model.audit import NOTIFICATION, because

from .http import answers, json_response, services

bp = func.Blueprint()
MAX_TOKEN = 2048


@bp.route(route="graph/notifications", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@answers
def graph_notifications(req: func.HttpRequest) -> func.HttpResponse:
    token = req.params.get("validationToken")
    if token is not None:
        if len(token) > MAX_TOKEN:
            return json_response(400, {"error": "BadRequest", "message": "validationToken is too long"})
        return func.HttpResponse(token, status_code=200, mimetype="text/plain")
    svc = services()
    tasks, refused = notification_tasks(req.get_body(), svc.find_subscription)
    jobs = svc.queue.enqueue(because(NOTIFICATION, tasks)) if tasks else []
    if tasks:
        from shared.features.status import note_notifications

        note_notifications(svc, tasks)
    return json_response(202, {"accepted": len(tasks), "refused": refused, "jobs": jobs})
