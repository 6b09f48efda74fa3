"""Configuration: option > environment variable > default, resolved once into a frozen object.

A bad value never raises: it is reported once on stderr ("[coldstart] ignoring invalid ...") and
the next source is used, as in the Node.js SDK (sdk/src/runtime/config.ts).
"""

import os

from . import _constants as C


def warn_once(kind: str, message: str) -> None:
    # _warn is loaded only when a value is bad: not at every cold start
    from ._warn import warn_once

    warn_once(kind, message)


class Config:
    """The resolved configuration. Read-only once built (typing.NamedTuple would cost the typing
    module's import, about 3 ms, to every cold start)."""

    __slots__ = (
        "api_key",  # str or None
        "endpoint",  # base URL, no trailing slash
        "enabled",
        "sample_rate",  # 0..1, warm invocations only
        "timeout_ms",
        "transport",  # "auto", "direct" or "logs"
        "extension",  # COLDSTART_EXTENSION: look for the extension when transport is auto
        "endpoint_from_option",  # an endpoint given in code wins over the extension
        "extension_host",
        "extension_stream_port",
        "extension_port",  # its HTTP endpoint (an extension layer older than the stream)
        "extension_path",
    )

    def __init__(self, **values: object) -> None:
        for name in self.__slots__:
            object.__setattr__(self, name, values[name])

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Config is read-only")

    def __repr__(self) -> str:
        shown = {n: getattr(self, n) for n in self.__slots__ if n != "api_key"}
        shown["api_key"] = "<set>" if self.api_key else None
        return "Config(%s)" % ", ".join("%s=%r" % kv for kv in shown.items())


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _bool(value: "Any", name: str) -> "Optional[bool]":
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    warn_once("invalid-" + name, "ignoring invalid %s: %r" % (name, value))
    return None


def _rate(value: "Any", name: str) -> "Optional[float]":
    try:
        rate = float(value)
    except (TypeError, ValueError):
        rate = -1.0
    if isinstance(value, bool) or not (0.0 <= rate <= 1.0):
        warn_once("invalid-" + name, "ignoring invalid %s: %r (a number from 0 to 1)" % (name, value))
        return None
    return rate


def _positive_int(value: "Any", name: str) -> "Optional[int]":
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        number = 0
    if isinstance(value, bool) or number <= 0:
        warn_once("invalid-" + name, "ignoring invalid %s: %r (a positive integer)" % (name, value))
        return None
    return number


def _endpoint(value: "Any", name: str) -> "Optional[str]":
    if isinstance(value, str):
        text = value.strip().rstrip("/")
        if text.startswith(("http://", "https://")) and len(text) > len("https://"):
            return text
    warn_once("invalid-" + name, "ignoring invalid %s: %r (an http: or https: URL)" % (name, value))
    return None


def _transport(value: "Any", name: str) -> "Optional[str]":
    if isinstance(value, str) and value.strip().lower() in ("auto", "direct", "logs"):
        return value.strip().lower()
    warn_once("invalid-" + name, "ignoring invalid %s: %r (auto, direct or logs)" % (name, value))
    return None


def _pick(options: "Mapping[str, Any]", option: str, env: "Mapping[str, str]", var: str, parse, default):
    if options.get(option) is not None:
        value = parse(options[option], option)
        if value is not None:
            return value
    if env.get(var):
        value = parse(env[var], var)
        if value is not None:
            return value
    return default


def resolve_config(options: "Optional[Mapping[str, Any]]" = None, env: "Optional[Mapping[str, str]]" = None) -> "Config":
    """Resolves the configuration from options given in code, the environment and the defaults."""
    options = dict(options or {})
    env = os.environ if env is None else env
    api_key = options.get("api_key")
    if not isinstance(api_key, str) or not api_key.strip():
        api_key = env.get(C.ENV_API_KEY, "")
    api_key = api_key.strip() or None
    endpoint_option = options.get("endpoint")
    endpoint_from_option = endpoint_option is not None and _endpoint(endpoint_option, "endpoint") is not None
    extension_env = env.get(C.ENV_EXTENSION, "auto").strip().lower()
    try:
        stream_port = int(env.get(C.ENV_EXTENSION_STREAM_PORT, "") or C.DEFAULT_EXTENSION_STREAM_PORT)
    except ValueError:
        warn_once("invalid-stream-port", "ignoring invalid %s" % C.ENV_EXTENSION_STREAM_PORT)
        stream_port = C.DEFAULT_EXTENSION_STREAM_PORT
    try:
        http_port = int(env.get(C.ENV_EXTENSION_PORT, "") or C.DEFAULT_EXTENSION_PORT)
    except ValueError:
        warn_once("invalid-extension-port", "ignoring invalid %s" % C.ENV_EXTENSION_PORT)
        http_port = C.DEFAULT_EXTENSION_PORT
    return Config(
        api_key=api_key,
        endpoint=_pick(options, "endpoint", env, C.ENV_ENDPOINT, _endpoint, C.DEFAULT_ENDPOINT),
        enabled=_pick(options, "enabled", env, C.ENV_ENABLED, _bool, True),
        sample_rate=_pick(options, "sample_rate", env, C.ENV_SAMPLE_RATE, _rate, C.DEFAULT_SAMPLE_RATE),
        timeout_ms=_pick(options, "timeout", env, C.ENV_TIMEOUT, _positive_int, C.DEFAULT_TIMEOUT_MS),
        transport=_pick(options, "transport", env, C.ENV_TRANSPORT, _transport, "auto"),
        extension=extension_env not in _FALSE,
        endpoint_from_option=endpoint_from_option,
        extension_host=env.get(C.ENV_EXTENSION_HOST) or C.DEFAULT_EXTENSION_HOST,
        extension_stream_port=stream_port,
        extension_port=http_port,
        extension_path=env.get(C.ENV_EXTENSION_PATH) or C.DEFAULT_EXTENSION_PATH,
    )
