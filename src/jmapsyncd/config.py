"""The daemon's configuration: a TOML file overridden by ``JMAPSYNCD_*`` environment variables.

Promises:

* :func:`load_config` returns a validated, immutable :class:`Settings` or raises
  :class:`~jmapsyncd.errors.ConfigError` whose message names the offending key (and the
  environment variable that can set it) -- never the value, so a password cannot leak into logs.
* Unknown keys in the file are errors; unknown ``JMAPSYNCD_*`` variables are logged.
* ``repr()``/``str()`` of settings never show a secret (``password`` is a ``SecretStr``).
* A config file that holds a password and that group or others can read draws a warning, and
  ``verify_tls = false`` draws a warning.
* Every field's description is the reference text of ``docs/configuration.md``
  (:func:`render_reference` writes it; a test keeps the file current).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import stat
import subprocess
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from jmapsyncd.errors import ConfigError
from jmapsyncd.sync.plan import ConflictPolicy

__all__ = [
    "ENV_PREFIX",
    "Settings",
    "default_config_path",
    "default_state_db",
    "load_config",
    "render_reference",
]

log = logging.getLogger(__name__)

ENV_PREFIX = "JMAPSYNCD_"
#: Variables with our prefix that are not settings (used by the test suite and scripts).
_NOT_SETTINGS = ("JMAPSYNCD_TEST_",)
#: How long ``password_command`` may take (it may prompt for a passphrase).
PASSWORD_COMMAND_TIMEOUT = 120.0

# The environment that load_config was given; defaults and the env source read it.
_ENV: ContextVar[Mapping[str, str] | None] = ContextVar("jmapsyncd_config_env", default=None)


def _env() -> Mapping[str, str]:
    env = _ENV.get()
    return os.environ if env is None else env


def _xdg(env: Mapping[str, str], name: str, fallback: str) -> Path:
    value = env.get(name)
    # The XDG spec says relative paths are invalid and must be ignored.
    if value and Path(value).is_absolute():
        return Path(value)
    return Path(env.get("HOME") or Path.home()) / fallback


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/jmapsyncd/config.toml`` (``~/.config/...`` when unset)."""
    return _xdg(_env() if env is None else env, "XDG_CONFIG_HOME", ".config") / (
        "jmapsyncd/config.toml"
    )


def default_state_db(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/jmapsyncd/state.sqlite`` (``~/.local/state/...`` when unset)."""
    return _xdg(_env() if env is None else env, "XDG_STATE_HOME", ".local/state") / (
        "jmapsyncd/state.sqlite"
    )


class _MappingEnvSource(EnvSettingsSource):
    """The stock environment source, reading the mapping given to :func:`load_config`."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        env = _ENV.get()
        if env is None:
            return super()._load_env_vars()
        return {
            key.lower(): value
            for key, value in env.items()
            if not (self.env_ignore_empty and value == "")
        }


class Settings(BaseSettings):
    """Everything the daemon reads from its configuration."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        frozen=True,
        case_sensitive=False,
        validate_default=True,
    )

    url: str = Field(
        description=(
            "JMAP session URL, e.g. `https://jmap.example.com/.well-known/jmap`. Plain "
            "`http://` logs a warning unless the host is on loopback."
        ),
    )
    username: str | None = Field(
        default=None,
        description="Login name for HTTP Basic authentication.",
    )
    password: SecretStr | None = Field(
        default=None,
        description=(
            "The password itself. Prefer `password_command` or `password_file`; a config file "
            "holding a password must not be readable by group or others (a warning is logged)."
        ),
    )
    password_command: list[str] | None = Field(
        default=None,
        min_length=1,
        description=(
            'A command as an argv list, e.g. `["pass", "show", "jmap"]`, run without a '
            "shell; its standard output, stripped, is the password. Its standard error goes to "
            "ours, so prompts stay visible. In the environment: a JSON list."
        ),
    )
    password_file: Path | None = Field(
        default=None,
        description="A file whose content, stripped, is the password. `~` is expanded.",
    )
    vdir: Path = Field(
        description=(
            "Root folder of the vdir: one sub-folder per calendar or task list, one `.ics` file "
            "per item (the layout khal and todoman read). `~` is expanded."
        ),
    )
    state_db: Path = Field(
        default_factory=lambda: default_state_db(),
        description=(
            "SQLite state database. Default: `$XDG_STATE_HOME/jmapsyncd/state.sqlite` "
            "(`~/.local/state/jmapsyncd/state.sqlite`)."
        ),
    )
    pull_interval: int = Field(
        default=300,
        ge=15,
        le=86_400,
        description=(
            "Seconds between two pulls of server changes (15 to 86400). Default 300: five "
            "minutes keeps a laptop's calendar fresh without loading the server."
        ),
    )
    conflict_resolution: ConflictPolicy = Field(
        default=ConflictPolicy.KEEP_BOTH,
        description=(
            "What to do with an item changed on both sides: `keep-both` (default: the server "
            "version stays, the local one is saved as a new item with a fresh UID), "
            "`server-wins` or `local-wins`."
        ),
    )
    include: list[str] = Field(
        default_factory=list,
        description=(
            "Sync only these calendars and task lists (JMAP ids or names). Empty: all of them. "
            "In the environment: a JSON list."
        ),
    )
    exclude: list[str] = Field(
        default_factory=list,
        description=(
            "Never sync these calendars and task lists (JMAP ids or names); wins over `include`."
        ),
    )
    verify_tls: bool = Field(
        default=True,
        description=(
            "Check the server's TLS certificate. `false` is for test servers only and logs a "
            "warning at every start."
        ),
    )
    push: Literal["auto", "off"] = Field(
        default="auto",
        description=(
            "Server push (RFC 8620 EventSource). `auto` (default): when the server offers an "
            "`eventSourceUrl`, `jmapsyncd run` listens to it and syncs within seconds of a change "
            "on the server; the scheduled pull then runs only every "
            "max(`pull_interval`, 30 minutes) as a safety net, and polling at `pull_interval` "
            "resumes while the server has no push or its stream keeps failing. `off`: poll every "
            "`pull_interval` only. Local edits are always picked up by watching the vdir."
        ),
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO",
        description="`DEBUG`, `INFO` (default), `WARNING` or `ERROR`; any case.",
    )
    timeout: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Seconds to wait for the server on each HTTP request.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # First wins: the environment overrides the file (passed in as init values).
        return (_MappingEnvSource(settings_cls), init_settings)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.username or parts.password:
            raise ValueError("must not hold credentials; use username and password_* instead")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("vdir", "state_db", "password_file")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser()

    @field_validator("password_command")
    @classmethod
    def _check_command(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value[0]:
            raise ValueError("the program name must not be empty")
        return value

    @model_validator(mode="after")
    def _one_password_source(self) -> Settings:
        given = [
            name
            for name in ("password", "password_command", "password_file")
            if getattr(self, name) is not None
        ]
        if len(given) > 1:
            raise ValueError(f"set only one of {', '.join(given)}")
        return self

    def resolve_password(self) -> str | None:
        """The password from whichever source is configured; ``None`` if there is none.

        :class:`ConfigError` if the file cannot be read or the command fails or prints nothing;
        the message never contains the secret or the command's output.
        """
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is not None:
            try:
                secret = self.password_file.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(
                    f"password_file: cannot read {self.password_file}: {type(exc).__name__}"
                ) from None
            if not secret:
                raise ConfigError(f"password_file: {self.password_file} is empty")
            return secret
        if self.password_command is not None:
            return _run_password_command(self.password_command)
        return None


def _run_password_command(argv: list[str]) -> str:
    program = argv[0]
    try:
        proc = subprocess.run(
            argv,
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            timeout=PASSWORD_COMMAND_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise ConfigError(f"password_command: program not found: {program}") from None
    except subprocess.TimeoutExpired:
        raise ConfigError(
            f"password_command: {program} did not finish within {PASSWORD_COMMAND_TIMEOUT:g}s"
        ) from None
    except OSError as exc:
        raise ConfigError(f"password_command: cannot run {program}: {exc.strerror}") from None
    if proc.returncode != 0:
        raise ConfigError(f"password_command: {program} failed with exit status {proc.returncode}")
    try:
        secret = proc.stdout.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"password_command: {program} printed something not UTF-8") from None
    if not secret:
        raise ConfigError(f"password_command: {program} printed nothing")
    return secret


# -- loading -------------------------------------------------------------------------------------


@contextmanager
def _using_env(env: Mapping[str, str]) -> Iterator[None]:
    token = _ENV.set(env)
    try:
        yield
    finally:
        _ENV.reset(token)


def _key_of(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(config)"


def _config_error(exc: ValidationError, source: str) -> ConfigError:
    # Only the key and pydantic's message: the input may be a password.
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        key = _key_of(error["loc"])
        field = key.split(".")[0]
        env_name = f" / {ENV_PREFIX}{field.upper()}" if field in Settings.model_fields else ""
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        problems.append(f"{key}{env_name}: {message}")
    return ConfigError(f"invalid configuration ({source}): " + "; ".join(problems))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fp:
            data = tomllib.load(fp)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from None
    if "password" in data:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning(
                "%s holds a password and group or others can read it (mode %o); "
                "run chmod 600 on it or use password_command",
                path,
                stat.S_IMODE(mode),
            )
    return data


def _warn_unknown_env(env: Mapping[str, str]) -> None:
    fields = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    for key in env:
        upper = key.upper()
        if (
            upper.startswith(ENV_PREFIX)
            and upper not in fields
            and not upper.startswith(_NOT_SETTINGS)
        ):
            log.warning("ignoring environment variable %s: no such setting", key)


def load_config(path: Path | None = None, env: Mapping[str, str] = os.environ) -> Settings:
    """Read ``path`` (default :func:`default_config_path`), apply ``env`` over it, validate.

    An explicitly given file must exist; a missing default file means "environment only".
    """
    explicit = path is not None
    file = path if path is not None else default_config_path(env)
    data: dict[str, Any] = {}
    if file.exists() or explicit:
        data = _read_toml(file)
    source = str(file) if data or explicit else f"environment ({ENV_PREFIX}*)"
    _warn_unknown_env(env)
    with _using_env(env):
        try:
            settings = Settings(**data)
        except ValidationError as exc:
            raise _config_error(exc, source) from None
        except SettingsError as exc:
            # Raised for an environment value that is not the JSON a list needs.
            match = re.search(r'field "(\w+)"', str(exc))
            field = match.group(1) if match else "?"
            raise ConfigError(
                f"invalid configuration (environment): {ENV_PREFIX}{field.upper()}: "
                'not valid JSON (write lists as JSON, e.g. ["a", "b"])'
            ) from None
    if not settings.verify_tls:
        log.warning("verify_tls is false: the server's TLS certificate is not checked")
    parts = urlsplit(settings.url)
    if parts.scheme == "http" and not _is_loopback(parts.hostname or ""):
        log.warning("url uses plain http: the password crosses the network unencrypted")
    return settings


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- reference documentation ---------------------------------------------------------------------


def _type_name(info: FieldInfo) -> str:
    annotation = info.annotation
    text = getattr(annotation, "__name__", None) or str(annotation)
    text = str(annotation) if "[" in str(annotation) or "|" in str(annotation) else text
    return (
        text.replace("typing.", "")
        .replace("pathlib.", "")
        .replace("pydantic.types.", "")
        .replace("jmapsyncd.sync.plan.", "")
    )


def _default_text(name: str, info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    if name == "state_db":
        return "see description"
    default = info.get_default(call_default_factory=True)
    if isinstance(default, ConflictPolicy):
        return f"`{default.value}`"
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, str):
        return f'`"{default}"`'
    return f"`{default}`"


def render_reference() -> str:
    """The Markdown text of ``docs/configuration.md``, built from the field descriptions."""
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated from the field descriptions in src/jmapsyncd/config.py by",
        "     jmapsyncd.config.render_reference(); tests/config keeps this file current. -->",
        "",
        "jmapsyncd reads a TOML file, by default `$XDG_CONFIG_HOME/jmapsyncd/config.toml`",
        "(`~/.config/jmapsyncd/config.toml`). Every key can be overridden by an environment",
        f"variable named `{ENV_PREFIX}` + the key in upper case (for example",
        f"`{ENV_PREFIX}PULL_INTERVAL=60`); list values are then written as JSON",
        '(`["a", "b"]`). The environment wins over the file.',
        "",
        "Unknown keys and bad values stop the daemon with a message naming the key. Set at most",
        "one of `password`, `password_command` and `password_file`. `config.example.toml` at the",
        "top of the repository shows every key.",
        "",
        "| key | environment variable | type | default | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, info in Settings.model_fields.items():
        description = (info.description or "").replace("|", "\\|")
        type_name = _type_name(info).replace("|", "\\|")
        lines.append(
            f"| `{name}` | `{ENV_PREFIX}{name.upper()}` | `{type_name}` "
            f"| {_default_text(name, info)} | {description} |"
        )
    return "\n".join(lines) + "\n"
