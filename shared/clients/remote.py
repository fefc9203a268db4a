"""HTTP to the outside world (Graph, the identity platform, RAPID sites): one session per process,
app-only tokens from one MSAL app per (authority, client), and one mapping of answers to errors."""

from __future__ import annotations

import contextlib
import threading

import msal
import requests
from requests.adapters import HTTPAdapter

from ..config import KNOWN_AUTHORITIES, Settings, SiteConfig
from ..model.errors import NotVisible, PreconditionFailed, RemoteError, RemoteNotFound, Throttled, TransientError

DEFAULT_RETRY_AFTER = 5.0
MAX_RETRY_AFTER = 300.0  # a queue message can be delayed this long without the job looking lost
TIMEOUT = (5, 30)
UNKNOWN_USER_CODES = ("ErrorInvalidUser",)  # docs/platform-facts.md, "A 404 is not always a deletion"


def new_session(ca_bundle: str | None = None, pool: int = 64) -> requests.Session:
    session = requests.Session()
    if ca_bundle:
        session.verify = ca_bundle
        session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment overrides verify
    adapter = HTTPAdapter(pool_connections=pool, pool_maxsize=pool)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def _error_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(body, dict) and "message" in body and not isinstance(error, dict):
        # RAPID: {"name", "message"} (docs/rapid-api.md, "Errors"); Graph nests {"error": {"code", "message"}}
        return f"{body.get('name') or body.get('error') or 'error'}: {body.get('message')}"[:300]
    if isinstance(error, dict):
        return f"{error.get('code', '')}: {error.get('message', '')}"[:300]
    return str(error or body)[:300]


def error_code(response: requests.Response) -> str:
    """The remote's own error code: Graph's `error.code`, RAPID's `name`; "" when the body has none."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    if isinstance(error, dict):
        return str(error.get("code") or "")
    return str(body.get("name") or "")


def checked(response: requests.Response, what: str, proof=None) -> requests.Response:
    """The response if it succeeded; otherwise the typed error callers decide on. `proof` says which 404s
    prove the resource itself is gone (a predicate over the error code): those raise RemoteNotFound, any
    other 404 NotVisible (cannot see it now, retried later). Without `proof`, every 404 is RemoteNotFound."""
    status = response.status_code
    if status < 400:
        return response
    message = f"{what}: {_error_message(response)}"
    if status in (429, 503):
        try:
            retry_after = float(response.headers.get("Retry-After", DEFAULT_RETRY_AFTER))
        except ValueError:
            retry_after = DEFAULT_RETRY_AFTER
        if retry_after != retry_after or retry_after < 0:  # nan or negative: the default
            retry_after = DEFAULT_RETRY_AFTER
        retry_after = min(retry_after, MAX_RETRY_AFTER)  # inf or absurd: come back at the cap
        raise Throttled(retry_after, message, status)
    if status == 404:
        code = error_code(response)
        if proof is None or proof(code):
            raise RemoteNotFound(message, code)
        if code in UNKNOWN_USER_CODES:  # no such user: a refusal for good, not something to wait out
            raise RemoteError(404, message)
        raise NotVisible(f"{what}: 404 {code or 'without a code'}, which does not prove it is gone "
                         f"({_error_message(response)[:160]}); will look again later", code)
    if status == 412:
        raise PreconditionFailed(message)
    if status >= 500 or status == 408:
        raise TransientError(f"{status} {message}")
    raise RemoteError(status, message, error_code(response))


class Tokens:
    """App-only tokens; MSAL keeps them cached in its app object, one per (authority, client)."""

    def __init__(self, settings: Settings, session: requests.Session):
        self._settings = settings
        self._session = session
        self._apps: dict[tuple, msal.ConfidentialClientApplication] = {}
        self._acquiring: dict[tuple, threading.Lock] = {}
        self._lock = threading.Lock()

    def _app(self, site: SiteConfig) -> msal.ConfidentialClientApplication:
        key = (site.aad_tenant, site.client_id)
        with self._lock:
            if key not in self._apps:
                self._apps[key] = msal.ConfidentialClientApplication(
                    site.client_id, client_credential=site.credential,
                    authority=f"{self._settings.authority_host}/{site.aad_tenant}",
                    # MSAL validates the known clouds' authorities; only the local simulator goes without
                    instance_discovery=None if self._settings.authority_host in KNOWN_AUTHORITIES else False,
                    http_client=self._session)
            return self._apps[key]

    def token(self, site: SiteConfig, scope: str, fresh: bool = False) -> str:
        """A token from MSAL's cache, or (`fresh`) a new one: the cached token was refused."""
        app = self._app(site)
        with self._lock:
            acquiring = self._acquiring.setdefault((site.aad_tenant, site.client_id, scope), threading.Lock())
        try:
            with acquiring:  # with an empty cache, one thread asks the token endpoint; the others get its token
                if fresh:
                    cache = app.token_cache
                    for entry in list(cache.search(cache.CredentialType.ACCESS_TOKEN, target=[scope])):
                        cache.remove_at(entry)
                result = app.acquire_token_for_client(scopes=[scope])
        except (requests.RequestException, ValueError) as e:
            raise TransientError(f"token for {site.key}: {type(e).__name__}") from e
        except msal.exceptions.MsalServiceError as e:  # an HTTP error MSAL met reading the authority's metadata
            raise _token_refused(site, e) from e
        if "access_token" not in result:
            description = (result.get("error_description") or "").splitlines()[0:1]
            raise RemoteError(401, f"token for {site.key} ({scope}): {result.get('error')} {' '.join(description)}")
        return result["access_token"]


@contextlib.contextmanager
def met(dependency: str):
    """Name the dependency a retryable failure came from (the breakers are per site and dependency)."""
    try:
        yield
    except (Throttled, TransientError) as e:
        e.dependency = e.dependency or dependency
        raise


def _token_refused(site: SiteConfig, error: Exception) -> Exception:
    """MSAL says "HTTP Error: <status>" (msal/throttled_http_client.py): a 5xx, 408 or 429 is worth waiting out."""
    words = str(error).split()
    status = int(words[-1]) if words and words[-1].isascii() and words[-1].isdigit() else 0
    if status >= 500 or status in (408, 429):
        return TransientError(f"token for {site.key}: the identity platform answered {status}")
    return RemoteError(status or 401, f"token for {site.key}: {error}")


def send(session: requests.Session, method: str, url: str, what: str, proof=None, **kwargs) -> requests.Response:
    kwargs.setdefault("timeout", TIMEOUT)
    try:
        response = session.request(method, url, **kwargs)
    except requests.RequestException as e:
        raise TransientError(f"{what}: {type(e).__name__}") from e
    return checked(response, what, proof)
