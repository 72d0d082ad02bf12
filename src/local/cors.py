"""API Gateway's CORS, answered locally from the template's own ``CorsConfiguration``.

On AWS the HTTP API (``template.yaml``: ``HttpApi.Properties.CorsConfiguration``, fed by the
``AllowedOrigins`` parameter) does all of CORS, and the API function does none of it. The local
stack has no API Gateway in front of the app, so :class:`HttpApiCors` plays its part, with the
configuration read from the same template block (the parameter's value substituted, as
CloudFormation would), so that the two cannot drift. Locally the parameter's value comes from
``CMT_ALLOWED_ORIGINS`` (:data:`ALLOWED_ORIGINS_VARIABLE`).

What an HTTP API with a CORS configuration does [1]_:

- A **preflight** (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) is answered
  by API Gateway itself, whatever routes exist (the template's ``ANY /{proxy+}`` included, since
  it has no authorizer [2]_): the function is never invoked. For an allowed origin the answer is
  204 with ``Access-Control-Allow-Origin`` (the origin), ``-Allow-Methods``, ``-Allow-Headers``
  and ``-Max-Age``; for any other origin it is 204 with no CORS header, so the browser refuses.
- Any **other request** goes to the function. When its ``Origin`` is allowed, API Gateway adds
  ``Access-Control-Allow-Origin`` (the origin) and ``Vary: origin`` (and
  ``Access-Control-Expose-Headers`` when configured) to the answer, whatever it is: the
  function's 2xx and 4xx/5xx, and API Gateway's own answers (its 500 and 503 when a response
  breaks Lambda's limits, its 429 when throttled) [3]_.
- CORS headers the function itself returns are ignored [1]_ (dropped here), so only one copy of
  each header ever reaches a browser: the app must send none (a test checks it does not).
- CORS headers are returned only to requests that carry ``Origin`` [1]_; an ``OPTIONS`` without
  ``Origin`` or without ``Access-Control-Request-Method`` is no preflight and reaches the function
  (whose answer, having no ``OPTIONS`` route, is 405).

Without allowed origins the template sets no ``CorsConfiguration`` at all (``AWS::NoValue``):
API Gateway then does no CORS and every request, preflights included, reaches the function,
which answers a preflight 405 with no CORS header. :func:`cors_configuration` returns ``None``
then and :func:`behind_http_api` adds nothing.

Modelled here, not documented by AWS in these words: the exact 204 for a preflight from an
origin that is not allowed (no CORS header, the symptom every report of a mistyped origin
describes), and the header values joined with commas as configured.

References
----------
.. [1] Amazon API Gateway Developer Guide, "Configure CORS for HTTP APIs in API Gateway": "API
   Gateway automatically sends a response to preflight OPTIONS requests, even if there isn't an
   OPTIONS route configured for your API. For a CORS request, API Gateway adds the configured
   CORS headers to the response from an integration."; "If you configure CORS for an API, API
   Gateway ignores CORS headers returned from your backend integration."; "To return CORS
   headers, your request must contain an origin header. For the OPTIONS method, your request
   must contain an origin header and an Access-Control-Request-Method header."
   https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-cors.html
.. [2] Ibid., "Configuring CORS for an HTTP API with a $default route and an authorizer": only an
   authorizer on a catch-all route makes preflights reach it.
.. [3] Responses of deployed HTTP APIs to a request with an allowed ``Origin`` carry
   ``access-control-allow-origin: <origin>`` followed by ``vary: origin``, on the function's 401
   as on API Gateway's own ``{"message":"Unauthorized"}`` (curl transcripts with an
   ``apigw-requestid`` header, quoted in public troubleshooting threads).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from local.limits import (
    INTEGRATION_TIMEOUT_SECONDS,
    LAMBDA_RESPONSE_LIMIT_BYTES,
    with_synchronous_limits,
)
from local.template import _default_template

__all__ = [
    "ALLOWED_ORIGINS_PARAMETER",
    "ALLOWED_ORIGINS_VARIABLE",
    "CorsConfiguration",
    "HttpApiCors",
    "behind_http_api",
    "cors_configuration",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ALLOWED_ORIGINS_PARAMETER = "AllowedOrigins"  # template.yaml's parameter
ALLOWED_ORIGINS_VARIABLE = "CMT_ALLOWED_ORIGINS"  # the same list for the local stack
_API = "HttpApi"
_NO_VALUE = object()  # what Ref AWS::NoValue resolves to: the property is absent


@dataclass(frozen=True)
class CorsConfiguration:
    """An HTTP API's ``CorsConfiguration``, with every intrinsic resolved.

    Attributes are the CloudFormation properties of the same names (``AllowOrigins`` ...).
    """

    allow_origins: tuple[str, ...]
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None
    allow_credentials: bool = False

    @classmethod
    def from_properties(cls, properties: Mapping[str, Any]) -> CorsConfiguration:
        known = {
            "AllowOrigins",
            "AllowMethods",
            "AllowHeaders",
            "ExposeHeaders",
            "MaxAge",
            "AllowCredentials",
        }
        unknown = set(properties) - known
        if unknown:
            raise ValueError(f"CorsConfiguration has unknown properties {sorted(unknown)}")
        max_age = properties.get("MaxAge")
        return cls(
            allow_origins=tuple(properties.get("AllowOrigins", ())),
            allow_methods=tuple(properties.get("AllowMethods", ())),
            allow_headers=tuple(properties.get("AllowHeaders", ())),
            expose_headers=tuple(properties.get("ExposeHeaders", ())),
            max_age=None if max_age is None else int(max_age),
            allow_credentials=bool(properties.get("AllowCredentials", False)),
        )

    def allows(self, origin: str) -> bool:
        """Whether ``origin`` (a request's ``Origin``) is one of the allowed origins."""
        return origin.lower() in {allowed.lower() for allowed in self.allow_origins}

    def preflight_headers(self, origin: str) -> list[tuple[bytes, bytes]]:
        """Headers of the 204 answer to a preflight from the allowed ``origin``."""
        headers = self._origin_headers(origin)
        if self.allow_methods:
            headers.append((b"access-control-allow-methods", _joined(self.allow_methods)))
        if self.allow_headers:
            headers.append((b"access-control-allow-headers", _joined(self.allow_headers)))
        if self.max_age is not None:
            headers.append((b"access-control-max-age", b"%d" % self.max_age))
        return headers

    def response_headers(self, origin: str) -> list[tuple[bytes, bytes]]:
        """Headers added to any other answer to a request from the allowed ``origin``."""
        headers = self._origin_headers(origin)
        if self.expose_headers:
            headers.append((b"access-control-expose-headers", _joined(self.expose_headers)))
        return headers

    def _origin_headers(self, origin: str) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"vary", b"origin"),
        ]
        if self.allow_credentials:
            headers.append((b"access-control-allow-credentials", b"true"))
        return headers


def _joined(values: tuple[str, ...]) -> bytes:
    return ",".join(values).encode("latin-1")


def cors_configuration(
    *, allowed_origins: str, template: Mapping[str, Any] | None = None
) -> CorsConfiguration | None:
    """The HTTP API's CORS configuration for this value of ``AllowedOrigins``, or ``None``.

    Parameters
    ----------
    allowed_origins
        The parameter's value: comma-separated origins, or empty for none (locally, the value
        of ``CMT_ALLOWED_ORIGINS``). It must match the parameter's ``AllowedPattern``, as
        CloudFormation would refuse the deployment otherwise.
    template
        The SAM template (default: the repository's ``template.yaml``).

    Returns
    -------
    CorsConfiguration or None
        ``None`` when the template gives the HTTP API no ``CorsConfiguration`` for this value.
    """
    template = _default_template() if template is None else template
    parameter = template["Parameters"][ALLOWED_ORIGINS_PARAMETER]
    pattern = parameter.get("AllowedPattern")
    if pattern is not None and not re.fullmatch(pattern, allowed_origins):
        raise ValueError(
            f"{ALLOWED_ORIGINS_PARAMETER} {allowed_origins!r} "
            f"{parameter.get('ConstraintDescription', f'does not match {pattern}')}"
        )
    properties = template["Resources"][_API].get("Properties", {})
    if "CorsConfiguration" not in properties:
        return None
    resolved = _Resolver(template, {ALLOWED_ORIGINS_PARAMETER: allowed_origins}).resolve(
        properties["CorsConfiguration"]
    )
    if resolved is _NO_VALUE:
        return None
    if not isinstance(resolved, dict):
        raise ValueError(f"{_API}.CorsConfiguration resolves to {resolved!r}, not a mapping")
    return CorsConfiguration.from_properties(resolved)


@dataclass(frozen=True)
class _Resolver:
    """The few intrinsic functions a ``CorsConfiguration`` may use, resolved as CloudFormation
    resolves them; any other intrinsic is refused rather than guessed."""

    template: Mapping[str, Any]
    parameters: Mapping[str, str]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in map(self.resolve, value) if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((name, argument),) = value.items()
            if name == "Ref":
                return self._ref(argument)
            if name == "Fn::If":
                condition, when_true, when_false = argument
                return self.resolve(when_true if self._condition(condition) else when_false)
            if name == "Fn::Split":
                delimiter, text = argument
                return str(self.resolve(text)).split(delimiter)
            if name == "Fn::Join":
                delimiter, items = argument
                return delimiter.join(str(item) for item in self.resolve(items))
            if name.startswith("Fn::") or name == "Condition":
                raise ValueError(f"{name} cannot be resolved locally")
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not _NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.parameters:
            return self.parameters[name]
        parameter = self.template.get("Parameters", {}).get(name)
        if parameter is None or "Default" not in parameter:
            raise ValueError(f"Ref {name} cannot be resolved locally")
        return parameter["Default"]

    def _condition(self, name: str) -> bool:
        return self._truth(self.template["Conditions"][name])

    def _truth(self, value: Any) -> bool:
        ((function, argument),) = value.items()
        if function == "Fn::Not":
            return not self._truth(argument[0])
        if function == "Fn::Equals":
            left, right = (self.resolve(item) for item in argument)
            return bool(left == right)
        if function == "Condition":
            return self._condition(argument)
        raise ValueError(f"condition function {function} cannot be resolved locally")


@dataclass(frozen=True)
class HttpApiCors:
    """ASGI middleware answering CORS as an HTTP API with ``configuration`` does (see module).

    Parameters
    ----------
    app
        What API Gateway integrates: the app behind :func:`local.limits.with_synchronous_limits`,
        so the limit answers carry the CORS headers as API Gateway's own answers do.
    configuration
        The HTTP API's CORS configuration (:func:`cors_configuration`).
    """

    app: ASGIApp
    configuration: CorsConfiguration

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _request_headers(scope)
        origin = headers.get(b"origin")
        if (
            scope["method"] == "OPTIONS"
            and origin is not None
            and b"access-control-request-method" in headers
        ):
            await self._preflight(origin, send)
            return
        added = (
            self.configuration.response_headers(origin)
            if origin is not None and self.configuration.allows(origin)
            else []
        )

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if not bytes(name).lower().startswith(b"access-control-")
                ]
                message = {**message, "headers": [*kept, *added]}
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, origin: str, send: Send) -> None:
        allowed = self.configuration.allows(origin)
        headers = self.configuration.preflight_headers(origin) if allowed else []
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _request_headers(scope: Scope) -> dict[bytes, str]:
    """Request headers by lower-case name (the last of repeated ones), values as text."""
    return {
        bytes(name).lower(): bytes(value).decode("latin-1")
        for name, value in scope.get("headers", [])
    }


def behind_http_api(
    app: ASGIApp,
    *,
    allowed_origins: str,
    template: Mapping[str, Any] | None = None,
    max_response_bytes: int = LAMBDA_RESPONSE_LIMIT_BYTES,
    timeout_seconds: float = INTEGRATION_TIMEOUT_SECONDS,
) -> ASGIApp:
    """``app`` as the template's HTTP API serves it: Lambda's and API Gateway's limits, then
    API Gateway's CORS for ``allowed_origins`` (what the local stack and the tests serve)."""
    limited: ASGIApp = with_synchronous_limits(
        app, max_response_bytes=max_response_bytes, timeout_seconds=timeout_seconds
    )
    configuration = cors_configuration(allowed_origins=allowed_origins, template=template)
    return limited if configuration is None else HttpApiCors(limited, configuration)
