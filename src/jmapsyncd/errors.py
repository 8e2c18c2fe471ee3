"""One exception tree for the whole package.

Every error jmapsyncd raises on purpose is a :class:`JmapsyncdError`::

    JmapsyncdError
    ├── JMAPError                      anything the JMAP client raises (url, reason, error_type)
    │   ├── JMAPTransportError         no usable HTTP answer: DNS, refused, reset, TLS, 5xx
    │   │   └── JMAPTimeoutError       the server did not answer within the timeout
    │   ├── JMAPAuthError              HTTP 401/403: final, never retried
    │   ├── JMAPCapabilityError        the server lacks a capability we need (names it)
    │   ├── LocalProtocolError         we were about to send something the server cannot accept
    │   ├── RemoteProtocolError        the server answered something that is not valid JMAP
    │   ├── JMAPRequestError           request-level problem (RFC 8620 §3.6.1: notJSON, limit …)
    │   └── JMAPMethodError            a method answered ["error", …] (RFC 8620 §3.6.2)
    │       ├── a subclass per RFC 8620 type (StateMismatch, CannotCalculateChanges …)
    │       └── JMAPSetError           a /set rejected one object (RFC 8620 §5.3)
    │           └── JMAPNotFoundError  the object does not exist (get or set)
    ├── ConversionError                iCalendar ⇄ JSCalendar input that cannot be converted
    ├── ConfigError                    bad configuration: names the key
    ├── StoreError                     the vdir refused an operation
    │   └── PreconditionFailed         the item changed under us (etag mismatch)
    └── SyncError                      the sync engine could not complete a step
        └── SyncInterrupted            shutdown was requested between two items

Attribute names ``url``, ``reason`` and ``error_type`` match the client API we reproduce, so code
written for it catches and reads our errors unchanged. Credentials never reach a message: callers
pass URLs without userinfo and never put headers into ``reason``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class JmapsyncdError(Exception):
    """Root of every error this package raises on purpose."""


class JMAPError(JmapsyncdError):
    """Base of every JMAP client error; ``error_type`` carries the JMAP type string if any."""

    error_type: str = "serverError"

    def __init__(
        self,
        url: str | None = None,
        reason: str | None = None,
        error_type: str | None = None,
    ) -> None:
        self.url = url
        self.reason = reason if reason is not None else (self.__doc__ or "").strip().split("\n")[0]
        if error_type is not None:
            self.error_type = error_type
        super().__init__(self.reason)

    def __str__(self) -> str:
        where = f" at {self.url}" if self.url else ""
        return f"{type(self).__name__} (type={self.error_type}){where}: {self.reason}"


class JMAPTransportError(JMAPError):
    """The server could not be reached or did not give a usable HTTP answer."""

    error_type = "transport"

    def __init__(
        self,
        url: str | None = None,
        reason: str | None = None,
        error_type: str | None = None,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(url, reason, error_type)
        self.status = status
        self.retry_after = retry_after


class JMAPTimeoutError(JMAPTransportError):
    """The server did not answer within the timeout."""

    error_type = "timeout"


class JMAPAuthError(JMAPError):
    """HTTP 401 or 403: the credentials were refused. Final; never retried."""

    error_type = "forbidden"

    def __init__(
        self,
        url: str | None = None,
        reason: str | None = None,
        error_type: str | None = None,
        *,
        status: int | None = None,
    ) -> None:
        super().__init__(url, reason, error_type)
        self.status = status


class JMAPCapabilityError(JMAPError):
    """The server does not offer a capability this operation needs."""

    error_type = "capabilityNotSupported"

    def __init__(
        self,
        url: str | None = None,
        reason: str | None = None,
        error_type: str | None = None,
        *,
        capability: str | None = None,
    ) -> None:
        super().__init__(url, reason, error_type)
        self.capability = capability


class LocalProtocolError(JMAPError):
    """We were about to send a request the server cannot accept (a bug or a bad argument)."""

    error_type = "localProtocolError"


class RemoteProtocolError(JMAPError):
    """The server's answer is not valid JMAP (bad JSON, missing fields, wrong types)."""

    error_type = "remoteProtocolError"


class JMAPRequestError(JMAPError):
    """The server rejected the whole request (RFC 8620 §3.6.1 problem details)."""

    error_type = "urn:ietf:params:jmap:error:notRequest"

    def __init__(
        self,
        url: str | None = None,
        reason: str | None = None,
        error_type: str | None = None,
        *,
        status: int | None = None,
        limit: str | None = None,
    ) -> None:
        super().__init__(url, reason, error_type)
        self.status = status
        self.limit = limit


class JMAPMethodError(JMAPError):
    """A JMAP method call returned an error response (RFC 8620 §3.6.2)."""

    error_type = "serverFail"
    #: method error types mapped to their subclass, filled by ``__init_subclass__``
    by_type: ClassVar[dict[str, type[JMAPMethodError]]] = {}

    def __init__(
        self,
        url: str | None = None,
        reason: str | None = None,
        error_type: str | None = None,
        *,
        method: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(url, reason, error_type)
        self.method = method
        self.details = details or {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Set errors share type names with method errors; they must not replace them. The name
        # test works while the module is still being defined (JMAPSetError comes later).
        is_set_error = any(k.__name__ == "JMAPSetError" for k in cls.__mro__)
        if "error_type" in cls.__dict__ and not is_set_error:
            JMAPMethodError.by_type[cls.error_type] = cls

    @classmethod
    def from_response(
        cls,
        arguments: dict[str, Any],
        *,
        url: str | None = None,
        method: str | None = None,
    ) -> JMAPMethodError:
        """Build the right subclass from the arguments of an ``["error", {...}, id]`` response."""
        etype = arguments.get("type")
        etype = etype if isinstance(etype, str) else "serverFail"
        desc = arguments.get("description")
        reason = desc if isinstance(desc, str) and desc else etype
        if method:
            reason = f"{method}: {reason}"
        klass = cls.by_type.get(etype, JMAPMethodError)
        return klass(url, reason, etype, method=method, details=dict(arguments))


def _method_error(name: str, etype: str, doc: str) -> type[JMAPMethodError]:
    return type(name, (JMAPMethodError,), {"error_type": etype, "__doc__": doc})


ServerUnavailable = _method_error(
    "ServerUnavailable", "serverUnavailable", "The server is temporarily unavailable."
)
ServerFail = _method_error("ServerFail", "serverFail", "The server failed to process the call.")
ServerPartialFail = _method_error(
    "ServerPartialFail", "serverPartialFail", "Some, not all, changes were made."
)
UnknownMethod = _method_error(
    "UnknownMethod", "unknownMethod", "The server does not know the method."
)
InvalidArguments = _method_error(
    "InvalidArguments", "invalidArguments", "An argument was of the wrong type or value."
)
InvalidResultReference = _method_error(
    "InvalidResultReference", "invalidResultReference", "A result reference failed to resolve."
)
Forbidden = _method_error("Forbidden", "forbidden", "The call is not permitted.")
AccountNotFound = _method_error("AccountNotFound", "accountNotFound", "The account does not exist.")
AccountNotSupportedByMethod = _method_error(
    "AccountNotSupportedByMethod",
    "accountNotSupportedByMethod",
    "The account does not support this method.",
)
AccountReadOnly = _method_error("AccountReadOnly", "accountReadOnly", "The account is read-only.")
RequestTooLarge = _method_error(
    "RequestTooLarge", "requestTooLarge", "The call exceeded a server limit."
)
CannotCalculateChanges = _method_error(
    "CannotCalculateChanges",
    "cannotCalculateChanges",
    "The server cannot calculate changes from this state: a full resync is needed.",
)
StateMismatch = _method_error("StateMismatch", "stateMismatch", "ifInState did not match.")
AnchorNotFound = _method_error(
    "AnchorNotFound", "anchorNotFound", "The query anchor is not in the results."
)
UnsupportedSort = _method_error("UnsupportedSort", "unsupportedSort", "The sort is not supported.")
UnsupportedFilter = _method_error(
    "UnsupportedFilter", "unsupportedFilter", "The filter is not supported."
)
TooManyChanges = _method_error("TooManyChanges", "tooManyChanges", "More changes than maxChanges.")


class JMAPSetError(JMAPMethodError):
    """A /set call rejected one object (RFC 8620 §5.3 SetError)."""

    error_type = "invalidProperties"

    def __init__(
        self,
        url: str | None = None,
        reason: str | None = None,
        error_type: str | None = None,
        *,
        method: str | None = None,
        details: dict[str, Any] | None = None,
        object_id: str | None = None,
        properties: list[str] | None = None,
    ) -> None:
        super().__init__(url, reason, error_type, method=method, details=details)
        self.object_id = object_id
        self.properties = list(properties or [])

    @classmethod
    def from_set_error(
        cls,
        object_id: str,
        error: Any,
        *,
        url: str | None = None,
        method: str | None = None,
    ) -> JMAPSetError:
        """Build from one entry of ``notCreated``/``notUpdated``/``notDestroyed``."""
        error = error if isinstance(error, dict) else {}
        etype = error.get("type")
        etype = etype if isinstance(etype, str) else "serverFail"
        desc = error.get("description")
        props = error.get("properties")
        properties = [p for p in props if isinstance(p, str)] if isinstance(props, list) else []
        reason = f"{object_id}: {etype}"
        if isinstance(desc, str) and desc:
            reason += f" ({desc})"
        if properties:
            reason += f" properties={properties}"
        if method:
            reason = f"{method}: {reason}"
        klass: type[JMAPSetError] = JMAPNotFoundError if etype == "notFound" else JMAPSetError
        return klass(
            url,
            reason,
            etype,
            method=method,
            details=dict(error),
            object_id=object_id,
            properties=properties,
        )


class JMAPNotFoundError(JMAPSetError):
    """The object does not exist on the server."""

    error_type = "notFound"


class ConversionError(JmapsyncdError, ValueError):
    """Input that cannot be converted between iCalendar and JSCalendar; says what and where."""

    def __init__(self, message: str, *, where: str | None = None) -> None:
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class ConfigError(JmapsyncdError):
    """The configuration is invalid; the message names the offending key."""


class StoreError(JmapsyncdError):
    """The vdir refused an operation."""


class PreconditionFailed(StoreError):
    """The item changed on disk since we last saw it (etag mismatch)."""


class SyncError(JmapsyncdError):
    """The sync engine could not complete a step."""


class SyncInterrupted(SyncError):
    """A pass stopped between two items because shutdown was requested; nothing is half-done."""
