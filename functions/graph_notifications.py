"""Graph's change and lifecycle notifications (docs/product-rules.md, "The functions"): answer the validation
handshake; verify, persist and answer 202 well within Graph's 3 seconds; 5xx when nothing could be
persisted (docs/platform-facts.md, "Answer notifications within 3 seconds")."""

import azure.functions as func

from shared.intake.lifecycle_once import enqueue_once
from shared.intake.notifications import notification_tasks
from shared.model.audit import NOTIFICATION, because

from .http import answers, json_response, services, text_response

bp = func.Blueprint()
MAX_TOKEN = 2048


@bp.route(route="graph/notifications", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@answers
def graph_notifications(req: func.HttpRequest) -> func.HttpResponse:
    token = req.params.get("validationToken")
    if token is not None:
        if len(token) > MAX_TOKEN:
            return json_response(400, {"error": "BadRequest", "message": "validationToken is too long"})
        return text_response(200, token)  # Graph's handshake: the token back as text/plain, within 10 s
    svc = services()
    tasks, refused, merged = notification_tasks(req.get_body(), svc.subscriptions_now)
    jobs, queued = enqueue_once(svc, tasks, lambda kept: svc.queue.enqueue(because(NOTIFICATION, kept)))
    if tasks:
        from shared.features.status import note_notifications

        note_notifications(svc, tasks)
    merged += queued  # repeats of lifecycle work already taken, in this request or queued by an earlier one
    return json_response(202, {"accepted": len(tasks) - queued, "refused": refused, "jobs": jobs,
                               **({"merged": merged} if merged else {})})
