"""The RAPID API over HTTP: `https://api.rapidplatform.com/api/<tenant>/<site>` (Rapid-Docs "docs/Rapid/
4-Developer Manual/API Concepts/API Concepts.md", "What is a Site"), one `SiteSim` per tenant/site.

Routes and answers (each handler names its source):
  GET    /lists/{List}/items/{id}               the item profile (items.profile)
  GET    /lists/{List}/{All|All$}/items         a page of rows (views.query)
  POST   /lists/{List}/items, /lists/{List}/{All|All$}/items   create one item or an array
  PUT    /lists/{List}/items/{id} (and /{View}/items/{id})     update only the posted keys
  DELETE /lists/{List}/items/{id}               soft delete
  GET    /openapi/lists, /openapi/{List}/schema[/single]
Errors are `{"name", "message"}` (docs/rapid-api.md, "Errors": public clients read that shape).
"""

from __future__ import annotations

from ..base import DEFAULT_TOKEN_KEY, HttpError, Request, Response, SimServer
from .auth import caller_ids, expired_error, forbidden, is_application, read_claims, unauthorized
from .items import Principal, parse_change, profile
from .pages import register as register_pages
from .schema import lists_document, schema_document
from .site import SiteSim
from .variant import RapidVariant
from .views import query, view_name
from .webhooks import parse_flag

_SITE = r"/api/(?P<tenant>[^/]+)/(?P<site>[^/]+)"
_LIST = _SITE + r"/lists/(?P<list>[^/]+)"


class _Call:
    """One authenticated request: the site, the list, who calls, and whether webhooks fire."""

    def __init__(self, site: SiteSim, list_name: str | None, principal: Principal, app: bool):
        self.site, self.list, self.principal, self.app = site, list_name, principal, app

    def webhooks(self, req: Request) -> bool:
        """Rapid-Docs "blog/2023-07-20-1.30.12 - Rapid Platform", "Breaking Change - API user webhook
        control": `webhooks` "is assumed to be true for normal requests, but is assumed to be false for
        Application User requests"."""
        try:
            return parse_flag(req.query.get("webhooks"), default=not self.app)
        except ValueError as e:
            raise HttpError(400, "BadRequest", str(e)) from None


class RapidSimulator(SimServer):
    api_prefixes = ("/api/",)
    name = "RAPID simulator"

    def __init__(self, token_key: str = DEFAULT_TOKEN_KEY, latency: float = 0.0,
                 latency_paths: list[str] | None = None, ca=None):
        super().__init__(token_key, latency, latency_paths)
        # a trustme.CA: serve https (RAPID's API is https://api.rapidplatform.com, docs/rapid-api.md, "A
        # site's API address")
        self._ca = ca
        self.sites: dict[tuple[str, str], SiteSim] = {}
        r = self.route
        r("GET", _LIST + r"/items/(?P<id>[^/]+)", self._get)
        r("PUT", _LIST + r"/items/(?P<id>[^/]+)", self._put)
        r("PUT", _LIST + r"/(?P<view>[^/]+)/items/(?P<id>[^/]+)", self._put)
        r("DELETE", _LIST + r"/items/(?P<id>[^/]+)", self._delete)
        r("POST", _LIST + r"/items", self._post)
        r("POST", _LIST + r"/(?P<view>[^/]+)/items", self._post)
        r("GET", _LIST + r"/(?P<view>[^/]+)/items", self._query)
        r("GET", _SITE + r"/openapi/lists", self._openapi_lists)
        r("GET", _SITE + r"/openapi/(?P<list>[^/]+)/schema(?:/single)?", self._openapi_schema)
        register_pages(self)  # the playground: /_sim/sites (pages.py)

    def ssl_context(self):
        if self._ca is None:
            return None
        import ssl

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        return context

    def add_site(self, tenant: str, site: str, aad_tenant: str, app_id: str,
                 app_principals: list[str] | None = None, variant: RapidVariant | None = None,
                 environment: str = "production") -> SiteSim:
        """A site whose API accepts tokens for `app_id` from `aad_tenant`. `app_principals`: None lets
        any application call; a list admits only those application ids (others get 403)."""
        site_sim = SiteSim(self, tenant, site, aad_tenant, app_id, app_principals, variant, environment)
        with self.lock:
            self.sites[(tenant.lower(), site.lower())] = site_sim
        return site_sim

    def stop(self) -> None:
        for site in self.sites.values():
            site.stop()
        super().stop()

    def site(self, tenant: str, site: str) -> SiteSim:
        return self.sites[(tenant.lower(), site.lower())]

    def error_body(self, code: str, message: str) -> dict:
        return {"name": code, "message": message}

    def state(self) -> dict:
        with self.lock:
            return {f"{t}/{s}": site.state() for (t, s), site in self.sites.items()}

    # -- every request: site, token, principal, list ------------------------------------------------

    def _call(self, req: Request, with_list: bool = True) -> _Call:
        site = self.sites.get((req.params["tenant"].lower(), req.params["site"].lower()))
        if site is None:
            raise HttpError(404, "NotFound", f"Site '{req.params['tenant']}/{req.params['site']}' not found")
        claims = read_claims(self.token_key, req.header("Authorization"))
        if claims is None:
            raise unauthorized()
        if site.token_expired(claims):
            raise expired_error(site.variant.expired_token_status)
        if claims.get("aud") != site.app_id or claims.get("tid") != site.aad_tenant:
            raise unauthorized("The bearer token is not for this site's application and tenant")
        list_name = site.api_list_name(req.params["list"]) if with_list else None
        app = is_application(claims)
        ids = caller_ids(claims)
        if app:
            allowed = site.app_principals
            if allowed is not None and not any(i in allowed for i in ids):
                raise forbidden(ids[0] if ids else "(unknown)", list_name)
            key = next((i for i in ids if allowed and i in allowed), ids[0] if ids else "unknown-app")
            principal = site.app_principal(key)
        else:
            who = claims.get("upn") or claims.get("oid") or "unknown-user"
            principal = site.app_principal(f"user:{who}", who, kind="User")
        return _Call(site, list_name, principal, app)

    @staticmethod
    def _id(req: Request) -> int:
        try:
            return int(req.params["id"])
        except ValueError:
            raise HttpError(400, "BadRequest", f"Item id must be an integer, not '{req.params['id']}'") from None

    @staticmethod
    def _view(req: Request) -> None:
        if "view" in req.params:
            view_name(req.params["view"])

    # -- items ---------------------------------------------------------------------------------------

    def _get(self, req: Request) -> Response:
        """Rapid-Docs "API Concepts.md", "How to get an item"; connector GetItem ("always return the full
        item profile"). A soft-deleted item still answers, with `deleted` set."""
        call = self._call(req)
        variant = call.site.variant
        if call.list in variant.empty_lists and variant.empty_items == "404":  # RapidVariant.empty_items
            raise HttpError(404, "NotFound", f"Item {req.params['id']} not found in '{call.list}'")
        with self.lock:
            self._unless_hidden(call, req)
            item = call.site._any_item(call.list, self._id(req))
            return Response(200, profile(call.site, item, call.site.variant))

    def _unless_hidden(self, call: _Call, req: Request) -> None:
        """SiteSim.hide_items: an item the app no longer sees answers as a missing one."""
        if call.list in call.site.hidden_items:
            raise HttpError(404, "NotFound", f"Item {req.params['id']} not found in '{call.list}'")

    def _put(self, req: Request) -> Response:
        """Rapid-Docs "API Concepts.md", "How to update an item" (only the posted keys change; "Returns
        the updated item") vs connector UpdateListItem (204): `RapidVariant.put_answer`."""
        call = self._call(req)
        self._view(req)
        body = req.body()
        if not isinstance(body, dict):
            raise HttpError(400, "BadRequest", "The request body must be a JSON object")
        fire = call.webhooks(req)
        with self.lock:
            self._unless_hidden(call, req)
            site = call.site
            item = site._update(call.list, self._id(req), body, call.principal, by_person=False, fire=fire, via="api")
            if site.variant.put_answer == "item200":
                return Response(200, profile(site, item, site.variant))
            return Response(204)

    def _post(self, req: Request) -> Response:
        """Rapid-Docs "API Concepts.md", "How to create an item" (an object, or "several items in an
        array"; arrays fire no webhooks unless `bulkEvents=true`) vs connector CreateListItem (201):
        `RapidVariant.post_answer`."""
        call = self._call(req)
        self._view(req)
        body = req.body()
        bulk = isinstance(body, list)
        bodies = body if bulk else [body]
        if not bodies or not all(isinstance(b, dict) for b in bodies):
            raise HttpError(400, "BadRequest", "The request body must be a JSON object or an array of objects")
        fire = call.webhooks(req)
        if bulk:
            try:
                fire = fire and parse_flag(req.query.get("bulkEvents"), False, "bulkEvents")
            except ValueError as e:
                raise HttpError(400, "BadRequest", str(e)) from None
        with self.lock:
            site = call.site
            schema = site.schemas[call.list]
            for b in bodies:      # check every item first: a refused array creates nothing
                parse_change(site, schema, b, False, site.variant)
            items = [site._create(call.list, b, call.principal, by_person=False, fire=fire, via="api") for b in bodies]
            profiles = [profile(site, i, site.variant) for i in items]
        if site.variant.post_answer == "object200":
            return Response(200, profiles if bulk else profiles[0])
        if site.variant.post_answer == "empty201":
            return Response(201)
        return Response(201, profiles)

    def _delete(self, req: Request) -> Response:
        """Soft delete (docs/rapid-api.md, "Writes and what they answer"). One item fires "Item Deleted" with
        its profile when webhooks fire. The answer is unpublished: `RapidVariant.delete_answer`."""
        call = self._call(req)
        fire = call.webhooks(req)
        with self.lock:
            site = call.site
            item = site._soft_delete(call.list, self._id(req), call.principal, via="api", fire=fire)
            body = profile(site, item, site.variant)
            if fire:
                site._fire(call.list, "Item Deleted", body)
        if site.variant.delete_answer == "item200":
            return Response(200, body)
        return Response(204)

    def _query(self, req: Request) -> Response:
        """views.query; the body per `RapidVariant.list_body` (Rapid-Docs "API Concepts.md": "as a JSON
        array"; public clients unwrap `value`, docs/rapid-api.md, "Reading a view")."""
        call = self._call(req)
        with self.lock:
            site = call.site
            rows = query(site, site.schemas[call.list], req.params["view"], req.query)
            # SiteSim.hide_items (the app's view filtered), RapidVariant.empty_lists (the list answers empty)
            if call.list in site.hidden or call.list in site.variant.empty_lists:
                rows = []
            return Response(200, rows if site.variant.list_body == "array" else {"value": rows})

    # -- schema ----------------------------------------------------------------------------------------

    def _openapi_lists(self, req: Request) -> Response:
        """Rapid-Docs "API Concepts.md", "How find what tables are available on a site"; connector GetLists."""
        call = self._call(req, with_list=False)
        with self.lock:
            return Response(200, lists_document(call.site.schemas))

    def _openapi_schema(self, req: Request) -> Response:
        """Rapid-Docs "API Concepts.md", "How to get a tables schema"; connector GetFieldListSchema."""
        call = self._call(req)
        with self.lock:
            return Response(200, schema_document(call.site.schemas[call.list]))
