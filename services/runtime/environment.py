"""The base of every settings class: typed environment variables with one error shape.

Each workload has one settings class (`services/<deployable>/settings.py`) composed of
sections built on `EnvironmentSettings`. A field is declared once, with `setting(...)`:
its variable name, type, default, limits and meaning. From that one declaration

- the process parses its environment (`from_env`), refusing a malformed value with a
  `SettingsError` whose message is one line: the variable, the value and what is allowed
  (an int refuses "2.9", a port refuses "abc", a pool refuses 0);
- a secret also accepts `<NAME>_FILE`, the path of a file holding it (Kubernetes mounts
  secrets as read-only files, so they never show in `/proc/*/environ`);
- the stacks render a pod's environment (`stacks/workloads/`), and
- `python -m scripts.environment_reference` writes docs/reference/environment.md.

pydantic-settings reads the variables (empty means unset) and pydantic checks them;
this module only adds the error shape, the file variants and the descriptions.
"""

from __future__ import annotations

import contextvars
import json
import os
import re
import types
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from contracts.secret_files import FILE_SUFFIX

__all__ = [
    "FILE_SUFFIX",
    "LOG_LEVELS",
    "CommaList",
    "EnvironmentSettings",
    "SettingsError",
    "Variable",
    "WorkloadSettings",
    "read_environment",
    "render_value",
    "setting",
]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_ENVIRON: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "eduscale_environ", default=types.MappingProxyType({})
)
"""The mapping `from_env` reads; empty otherwise, so a direct construction reads no env."""
_CREDENTIALS = re.compile(r"(?<=://)([^:/@]*):[^@/]*@")


class SettingsError(ValueError):
    """A variable is missing or malformed.

    The message is one line: the variable, its value and what is allowed.
    """


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


CommaList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split_commas)]
"""A comma-separated list (`a,b`), not JSON."""


def setting(
    env: str,
    default: Any = ...,
    *,
    description: str,
    allowed: str | None = None,
    secret: bool = False,
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
) -> Any:
    """Declare a field read from the variable `env`.

    `allowed` says in words what a validator accepts (the limits of numbers, the
    values of a Literal and booleans are described from the type). `secret` keeps the
    value out of every message and accepts `<env>_FILE`.
    """
    return Field(
        default,
        validation_alias=env,
        description=description,
        ge=ge,
        le=le,
        gt=gt,
        json_schema_extra={"env": env, "allowed": allowed, "secret": secret},
    )


class Variable(typing.NamedTuple):
    """One environment variable as a settings class declares it (for docs and stacks)."""

    name: str
    field: str
    type: str
    default: str
    allowed: str
    description: str
    secret: bool
    required: bool


class _MappingSource(EnvSettingsSource):
    """pydantic-settings' environment source, over a given mapping instead of os.environ."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return dict(_ENVIRON.get())


class EnvironmentSettings(BaseSettings):
    """Settings read from environment variables declared with `setting(...)`."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        case_sensitive=True,
        validate_by_name=True,
        validate_by_alias=True,
        str_strip_whitespace=True,
        allow_inf_nan=False,
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
        """Keyword arguments first, then the mapping `from_env` was given (no dotenv)."""
        del env_settings, dotenv_settings, file_secret_settings
        return (init_settings, _MappingSource(settings_cls, case_sensitive=True))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Read and check every variable; raise `SettingsError` on the first bad one."""
        values = read_environment(cls.variables(), os.environ if environ is None else environ)
        token = _ENVIRON.set(values)
        try:
            return cls()
        except ValidationError as error:
            raise SettingsError(_one_line(cls, error, values)) from None
        finally:
            _ENVIRON.reset(token)

    @classmethod
    def variables(cls) -> tuple[Variable, ...]:
        """Every variable of the class, in declaration order."""
        return tuple(_variable(name, info) for name, info in cls.model_fields.items())

    @classmethod
    def env_name(cls, field: str) -> str:
        """The variable a field is read from."""
        return _env_of(cls.model_fields[field])

    def env_values(self) -> dict[str, str]:
        """The variables that would give these settings (defaults left out)."""
        rendered: dict[str, str] = {}
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            if info.is_required() or value != info.default:
                rendered[_env_of(info)] = render_value(value)
        return rendered


def render_value(value: object) -> str:
    """A value as its variable holds it (true/false, comma lists, plain numbers)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return ",".join(render_value(part) for part in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if value is None:
        return ""
    return str(value)


def read_environment(variables: tuple[Variable, ...], environ: Mapping[str, str]) -> dict[str, str]:
    """The declared variables that are set (stripped; empty means unset).

    A secret's `<NAME>_FILE` is read into `<NAME>`; setting both is an error.
    """
    values: dict[str, str] = {}
    for variable in variables:
        value = environ.get(variable.name, "").strip()
        path = environ.get(variable.name + FILE_SUFFIX, "").strip() if variable.secret else ""
        if path and value:
            raise SettingsError(
                f"{variable.name} and {variable.name}{FILE_SUFFIX} are both set: set one of them"
            )
        if path:
            value = _read_secret_file(variable.name + FILE_SUFFIX, path)
        if value:
            values[variable.name] = value
    return values


def _read_secret_file(name: str, path: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise SettingsError(
            f"{name}={path!r} cannot be read ({error.strerror or error}): use the path of "
            "a readable file holding the value"
        ) from None
    except UnicodeDecodeError:
        raise SettingsError(f"{name}={path!r} is not UTF-8 text: use a text file") from None
    return text.rstrip("\r\n")


def _env_of(info: FieldInfo) -> str:
    extra = info.json_schema_extra
    if not isinstance(extra, dict) or not isinstance(extra.get("env"), str):
        message = "every field of a settings class is declared with setting(...)"
        raise TypeError(message)
    return str(extra["env"])


def _extra(info: FieldInfo, key: str) -> object:
    extra = info.json_schema_extra
    return extra.get(key) if isinstance(extra, dict) else None


def _metadata_bounds(info: FieldInfo) -> dict[str, float]:
    bounds: dict[str, float] = {}
    for item in info.metadata:
        for key in ("ge", "le", "gt"):
            value = getattr(item, key, None)
            if value is not None:
                bounds[key] = value
    return bounds


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _core_type(annotation: object) -> object:
    """The type without Optional and Annotated."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in {typing.Union, types.UnionType}:
        kept = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(kept) == 1:
            return _core_type(kept[0])
    return annotation


def _type_name(info: FieldInfo) -> str:
    core = _core_type(info.annotation)
    if get_origin(core) is Literal:
        return "choice"
    if core is tuple or get_origin(core) is tuple:
        return "list"
    names: dict[object, str] = {bool: "boolean", int: "integer", float: "number", str: "text"}
    return names.get(core) or str(getattr(core, "__name__", core))


def _allowed(info: FieldInfo) -> str:
    explicit = _extra(info, "allowed")
    if isinstance(explicit, str):
        return explicit
    core = _core_type(info.annotation)
    if get_origin(core) is Literal:
        choices = [str(arg) for arg in get_args(core)]
        return " or ".join(choices) if len(choices) == 2 else "one of " + ", ".join(choices)  # noqa: PLR2004
    if core is bool:
        return "true or false"
    if core in {int, float}:
        return _number_range("a whole number" if core is int else "a number", info)
    return "any text"


def _number_range(kind: str, info: FieldInfo) -> str:
    bounds = _metadata_bounds(info)
    low = f" from {_number(bounds['ge'])}" if "ge" in bounds else ""
    if "gt" in bounds:
        low = f" above {_number(bounds['gt'])}"
    high = ""
    if "le" in bounds:
        high = (" to " if "ge" in bounds else " up to ") + _number(bounds["le"])
    return f"{kind}{low}{high}"


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "(required)"
    if info.default is None:
        return "(unset)"
    return render_value(info.default) or "(none)"


def _variable(field: str, info: FieldInfo) -> Variable:
    return Variable(
        name=_env_of(info),
        field=field,
        type=_type_name(info),
        default=_default(info),
        allowed=_allowed(info),
        description=" ".join((info.description or "").split()),
        secret=bool(_extra(info, "secret")),
        required=info.is_required(),
    )


def _shown(variable: Variable, value: str | None) -> str:
    if value is None:
        return ""
    if variable.secret:
        return f"=<hidden, {len(value)} characters>"
    return "=" + repr(_CREDENTIALS.sub(r"\1:***@", value))


def _one_line(
    cls: type[EnvironmentSettings], error: ValidationError, values: Mapping[str, str]
) -> str:
    by_name = {variable.name: variable for variable in cls.variables()}
    by_field = {variable.field: variable for variable in cls.variables()}
    first = error.errors()[0]
    loc = first["loc"]
    variable = (by_name.get(str(loc[0])) or by_field.get(str(loc[0]))) if loc else None
    reason = _reason(first)
    if variable is None:  # a check across fields: its message names them
        return reason
    if first["type"] == "missing":
        return f"{variable.name} is not set: expected {variable.allowed}"
    shown = _shown(variable, values.get(variable.name))
    if reason:
        return f"{variable.name}{shown} is not allowed: {reason}"
    return f"{variable.name}{shown} is not allowed: use {variable.allowed}"


def _reason(error: Any) -> str:
    """A validator's own message (it says what is allowed); "" for pydantic's type errors."""
    cause = (error.get("ctx") or {}).get("error")
    if error["type"] == "value_error" and cause is not None:
        return " ".join(str(cause).split())
    return ""


def workload_variables(*sections: type[EnvironmentSettings]) -> Iterator[Variable]:
    """The variables of several sections, each once (the first declaration wins)."""
    seen: set[str] = set()
    for section in sections:
        for variable in section.variables():
            if variable.name not in seen:
                seen.add(variable.name)
                yield variable


class WorkloadSettings(BaseModel):
    """One deployable's settings: its sections, each read from the same environment.

    A field is a section (`EnvironmentSettings`); `Section | None` is a section the
    process does without when none of its required variables is set.
    """

    model_config = ConfigDict(frozen=True)

    @classmethod
    def sections(cls) -> dict[str, tuple[type[EnvironmentSettings], bool]]:
        """Field name -> (section class, whether it may be absent)."""
        sections: dict[str, tuple[type[EnvironmentSettings], bool]] = {}
        for name, info in cls.model_fields.items():
            annotation, optional = info.annotation, False
            if get_origin(annotation) in {typing.Union, types.UnionType}:
                args = [arg for arg in get_args(annotation) if arg is not type(None)]
                annotation, optional = args[0], True
            if not (isinstance(annotation, type) and issubclass(annotation, EnvironmentSettings)):
                message = f"{cls.__name__}.{name} is not a settings section"
                raise TypeError(message)
            sections[name] = (annotation, optional)
        return sections

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Read every section; raise `SettingsError` on the first bad variable."""
        environ = os.environ if environ is None else environ
        values: dict[str, EnvironmentSettings | None] = {}
        for name, (section, optional) in cls.sections().items():
            required = [v.name for v in section.variables() if v.required]
            absent = not any(environ.get(variable, "").strip() for variable in required)
            values[name] = None if optional and absent else section.from_env(environ)
        return cls.model_validate(values)

    @classmethod
    def variables(cls) -> tuple[Variable, ...]:
        """Every variable the process reads, each once."""
        return tuple(workload_variables(*(section for section, _ in cls.sections().values())))
