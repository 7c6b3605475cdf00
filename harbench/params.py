"""Declared plugin parameters, validated by pydantic so that suites get errors naming the offending field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Mapping

import pydantic


class ParamError(ValueError):
    """A parameter value does not fit its declaration; ``errors`` holds (dotted location, message) pairs."""

    def __init__(self, owner: str, errors: list[tuple[str, str]]):
        self.owner = owner
        self.errors = errors
        super().__init__("; ".join(f"{loc}: {msg}" for loc, msg in errors))


@dataclass(frozen=True)
class Param:
    """One parameter: its default (whose type is the parameter's type unless ``type`` says otherwise),
    an optional set of allowed values, and a one-line help text for ``harbench list``."""

    default: Any
    help: str = ""
    choices: tuple[Any, ...] | None = None
    type: Any = None
    ge: float | None = None
    le: float | None = None

    def annotation(self) -> Any:
        if self.choices is not None:
            return Literal[tuple(self.choices)]  # type: ignore[misc]
        if self.type is not None:
            return self.type
        if self.default is None:
            return Any
        if isinstance(self.default, bool):
            return bool
        if isinstance(self.default, float):
            return float
        if isinstance(self.default, (list, tuple)):
            inner = type(self.default[0]) if self.default else Any
            return list[inner]  # type: ignore[valid-type]
        return type(self.default)

    def describe_type(self) -> str:
        if self.choices is not None:
            return " | ".join(map(str, self.choices))
        ann = self.annotation()
        return getattr(ann, "__name__", str(ann))


_models: dict[tuple, type[pydantic.BaseModel]] = {}


def _model_for(params: Mapping[str, Param], owner: str) -> type[pydantic.BaseModel]:
    key = (owner, tuple(sorted((k, repr(v)) for k, v in params.items())))
    if key not in _models:
        fields = {
            name: (p.annotation(), pydantic.Field(default=p.default, ge=p.ge, le=p.le, description=p.help))
            for name, p in params.items()
        }
        _models[key] = pydantic.create_model(  # type: ignore[call-overload]
            f"Params_{owner}".replace("-", "_"),
            __config__=pydantic.ConfigDict(extra="forbid", strict=False),
            **fields,
        )
    return _models[key]


class ParamValues(dict):
    """Resolved parameter values with attribute access (``self.params.lr``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    @classmethod
    def resolve(cls, declared: Mapping[str, Param], given: Mapping[str, Any], owner: str) -> "ParamValues":
        try:
            model = _model_for(declared, owner)(**dict(given))
        except pydantic.ValidationError as exc:
            errors = []
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"])
                msg = err["msg"]
                if err["type"] == "extra_forbidden":
                    msg = f"unknown parameter of {owner!r}; known: {', '.join(sorted(declared)) or 'none'}"
                errors.append((loc, msg))
            raise ParamError(owner, errors) from None
        return cls(model.model_dump())

    @staticmethod
    def defaults(declared: Mapping[str, Param]) -> dict[str, Any]:
        return {k: p.default for k, p in declared.items()}
