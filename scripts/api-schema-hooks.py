"""Schemathesis checks of our own for scripts/api-schema-test.sh (loaded
through SCHEMATHESIS_HOOKS; each run names the checks it uses)."""

import os

import schemathesis


def _error_code(response):
    try:
        body = response.json()
    except Exception:
        return None
    return body.get("error") if isinstance(body, dict) else None


@schemathesis.check
def answers_401_without_key(ctx, response, case):
    """Without a valid key, every documented operation answers 401 (the key is
    checked right after the path and the method)."""
    status = response.status_code
    if status == 401:
        return None
    documented = case.method.upper() == case.operation.method.upper()
    if status == 405 and not documented:
        return None
    if status == 404 and _error_code(response) == "not_found":
        return None  # the request's path is not the API's (e.g. a dot segment)
    raise AssertionError(f"without a valid key: {status} {_error_code(response)!r}, expected 401 unauthorized")


@schemathesis.check
def answers_403_without_scope(ctx, response, case):
    """With the key API_SCHEMA_KEY holding only the scopes in API_SCHEMA_SCOPES,
    an operation needing another (its tag) answers 403, one it holds never
    does (and a request schemathesis sent without that key answers 401)."""
    held = set(os.environ["API_SCHEMA_SCOPES"].split(","))
    needed = (case.operation.tags or ["?"])[0]
    status = response.status_code
    if case.method.upper() != case.operation.method.upper():
        return None  # an undocumented method: 405 comes before the key
    sent = response.request.headers.get("Authorization")
    if sent != f"Bearer {os.environ['API_SCHEMA_KEY']}":
        if status == 401:
            return None  # schemathesis left the key out or changed it
        raise AssertionError(f"{status} {_error_code(response)!r} without the key, expected 401")
    if needed in held and status == 403:
        raise AssertionError(f"403 for an operation needing {needed!r}, which the key holds")
    if needed not in held and status != 403:
        if status == 404 and _error_code(response) == "not_found":
            return None  # the request's path is not the API's
        raise AssertionError(f"{status} {_error_code(response)!r} for an operation needing {needed!r}, expected 403 forbidden")


@schemathesis.check
def answers_api_off(ctx, response, case):
    """With no key configured, the API is off: every request answers 404
    api_off, whatever its path, method or key."""
    if response.status_code != 404 or _error_code(response) != "api_off":
        raise AssertionError(f"with no key configured: {response.status_code} {_error_code(response)!r}, expected 404 api_off")


@schemathesis.check
class every_operation_succeeds:
    """With a key holding every scope, each operation answered 2xx at least once:
    the run did more than collect 400s (delete is reached through the link
    from publish)."""

    def __init__(self):
        self.tested = set()
        self.reached = set()

    def after_response(self, ctx, response, case):
        self.tested.add(case.operation.label)
        if 200 <= response.status_code < 300:
            self.reached.add(case.operation.label)

    def after_run(self, ctx):
        never = self.tested - self.reached
        if never:
            raise AssertionError("never answered 2xx: " + ", ".join(sorted(never)))
