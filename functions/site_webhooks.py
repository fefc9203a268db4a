"""The site's internal webhooks: validate, persist a job, answer 202 (docs/product-rules.md, "The
functions")."""

import azure.functions as func

from shared.intake.webhooks import agenda_tasks, check_site_token, known_site, site_tasks
from shared.model.audit import WEBHOOK, because

from .http import answers, json_response, services, given_site_token

bp = func.Blueprint()
PREFIX = "{tenant}/{site}/0/services/rapid-meetings"


def accept(req: func.HttpRequest, op: str, many: bool = False, carry: tuple = (),
           agenda: bool = False) -> func.HttpResponse:
    svc = services()
    tenant, site = req.route_params.get("tenant"), req.route_params.get("site")
    config = known_site(svc.settings, tenant, site)
    check_site_token(svc.settings, config, given_site_token(req))
    if agenda:  # one task for the request: the job asks the site what is true (features/agenda_changes.py)
        tasks = agenda_tasks(svc.settings, tenant, site, op, req.get_body(), many)
        if not config.agenda:  # checked, but this site's invitations carry no agenda (SITES `agenda`)
            return json_response(202, {"accepted": 0, "jobs": [], "ignored": f"agenda is off for {config.key}"})
        accepted = sum(len(task["items"]) for task in tasks)
    else:
        tasks = site_tasks(svc.settings, tenant, site, op, req.get_body(), many, carry)
        accepted = len(tasks)
    jobs = svc.queue.enqueue(because(WEBHOOK, tasks))
    return json_response(202, {"accepted": accepted, "jobs": jobs})


@bp.route(route=f"{PREFIX}/event/create", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@answers
def event_create(req: func.HttpRequest) -> func.HttpResponse:
    return accept(req, "event.create")


@bp.route(route=f"{PREFIX}/event/update", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@answers
def event_update(req: func.HttpRequest) -> func.HttpResponse:
    return accept(req, "event.update")


@bp.route(route=f"{PREFIX}/event/delete", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@answers
def event_delete(req: func.HttpRequest) -> func.HttpResponse:
    return accept(req, "event.delete", many=True)


@bp.route(route=f"{PREFIX}/meeting/create", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@answers
def meeting_create(req: func.HttpRequest) -> func.HttpResponse:
    return accept(req, "meeting.create")


@bp.route(route=f"{PREFIX}/subscriptions/update", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@answers
def subscriptions_update(req: func.HttpRequest) -> func.HttpResponse:
    return accept(req, "subscription_item.update")


@bp.route(route=f"{PREFIX}/subscriptions/delete", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@answers
def subscriptions_delete(req: func.HttpRequest) -> func.HttpResponse:
    # the items are gone from the site by now: keep the meeting they named
    return accept(req, "subscription_item.delete", many=True, carry=("meeting",))


# Meeting Agendas (issue 15): the event's invitation follows its agenda; a burst costs one Outlook update
# (shared/features/agenda_changes.py). "Items Deleted" may carry items, ids or the envelope
# (docs/rapid-api.md, "The Items Deleted body is not published").

@bp.route(route=f"{PREFIX}/agenda/create", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@answers
def agenda_create(req: func.HttpRequest) -> func.HttpResponse:
    return accept(req, "agenda.create", agenda=True)


@bp.route(route=f"{PREFIX}/agenda/update", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@answers
def agenda_update(req: func.HttpRequest) -> func.HttpResponse:
    return accept(req, "agenda.update", agenda=True)


@bp.route(route=f"{PREFIX}/agenda/delete", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@answers
def agenda_delete(req: func.HttpRequest) -> func.HttpResponse:
    return accept(req, "agenda.delete", many=True, agenda=True)
