"""One strict reader for the YAML (and TOML) files users write: profiles, targets, fleets.

These files are where typos happen, and a typo must never silently change what is built or
where it is sent. So every file is read the same way: UTF-8 or a clear refusal, duplicate
keys refused (plain YAML keeps the last one silently), a mapping at the top, and schema
errors explained field by field with "did you mean" (see `explain_validation`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from edgecompress.errors import EdgeCompressError


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys, which plain YAML resolves silently (last one wins)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}' (first at line {seen[key] + 1})", key_node.start_mark
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def read_text(path: Path, error: type[EdgeCompressError], what: str) -> str:
    """The file's text, or `error` saying it is not UTF-8 text (and where the first bad byte is)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(
            f"The {what} {path} cannot be read: {exc.strerror or exc}.", "Check the path and its permissions."
        ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            f"The {what} {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "it may be a binary file or saved in another encoding.",
            f"Save {path.name} as UTF-8 text (most editors: 'Save with encoding' -> UTF-8).",
        ) from None


def read_mapping(path: Path, error: type[EdgeCompressError], what: str, layout_hint: str) -> dict[str, Any]:
    """A YAML or TOML file that must hold a mapping of fields; every problem raises `error`."""
    text = read_text(path, error, what)
    document = _parse_toml(text, path, error) if path.suffix.lower() == ".toml" else _parse_yaml(text, path, error)
    if document is None:
        raise error(f"The {what} {path} is empty.", layout_hint)
    if not isinstance(document, dict):
        raise error(
            f"The {what} {path} must hold a mapping of fields (key: value lines), not a {type(document).__name__}.",
            layout_hint,
        )
    return document


def _parse_yaml(text: str, path: Path, error: type[EdgeCompressError]) -> Any:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise error(
            f"{path} is not valid YAML{where}: {exc.problem or exc.context}.",
            "Fix the YAML syntax there (indentation uses spaces, `key: value`).",
        ) from None
    except yaml.YAMLError as exc:
        raise error(f"{path} is not valid YAML: {exc}.", "Fix the YAML syntax.") from None


def _parse_toml(text: str, path: Path, error: type[EdgeCompressError]) -> Any:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        raise error(f"Reading {path} needs Python 3.11+ (tomllib).", "Write the file as .yaml instead.") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message ends in "(at line N, column M)"
        raise error(f"{path} is not valid TOML: {exc}.", "Fix the TOML syntax there.") from None


# --------------------------------------------------------------------------------------
# Turning pydantic's errors into sentences that name the field and what is allowed
# --------------------------------------------------------------------------------------


def closest(word: str, choices: Iterable[Any], cutoff: float = 0.6) -> str | None:
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1, cutoff=cutoff)
    return close[0] if close else None


def did_you_mean(word: str, choices: Iterable[Any], cutoff: float = 0.6) -> str:
    close = closest(word, choices, cutoff)
    return f" (did you mean '{close}'?)" if close else ""


def yaml_value(value: Any) -> str:
    """A value as the user wrote it in YAML (true, not True; [a, b], not ['a', 'b'])."""
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()


def explain_validation(error: ValidationError, root: type[BaseModel]) -> list[str]:
    """One sentence per problem in a document validated against `root`; an unknown field and
    the missing field it misspells become one sentence."""
    return _Explainer(root).explain_all(error.errors(include_url=False))


class _Explainer:
    def __init__(self, root: type[BaseModel]) -> None:
        self.root = root

    def explain_all(self, errors: list[Any]) -> list[str]:
        missing = {tuple(e["loc"]) for e in errors if e["type"] == "missing"}
        explained: list[str] = []
        for error in sorted(errors, key=lambda e: e["type"] != "extra_forbidden"):
            loc = tuple(error["loc"])
            if error["type"] == "extra_forbidden":
                siblings_missing = [m[-1] for m in missing if m[:-1] == loc[:-1]]
                meant = difflib.get_close_matches(str(loc[-1]), siblings_missing, n=1, cutoff=0.3)
                if meant:
                    missing.discard((*loc[:-1], meant[0]))
                explained.append(self._unknown_field(loc, meant[0] if meant else None))
            elif error["type"] == "value_error" and not loc:  # whole-document rules, one per line
                explained.extend(str(error["ctx"]["error"]).splitlines())
            elif error["type"] != "missing" or loc in missing:
                explained.append(self._explain(error))
        return explained

    def _explain(self, error: dict[str, Any]) -> str:
        loc = tuple(error["loc"])
        path = _dotted(loc)
        kind = error["type"]
        value = error.get("input")
        if kind == "missing":
            return f"required field '{path}' is missing{self._described(loc)}."
        if kind == "value_error":
            return f"{path} = {yaml_value(value)}: {error['ctx']['error']}"
        allowed = self._allowed_values(loc)
        if allowed:
            hint = did_you_mean(str(value), map(str, allowed), cutoff=0.5)
            return f"{path} = {yaml_value(value)} is not allowed{hint}. Allowed values: {', '.join(map(str, allowed))}."
        if kind in ("model_type", "dict_type"):
            return f"{path} must be a mapping of fields ({', '.join(self._model_at(loc).model_fields)}), not {yaml_value(value)}."
        return f"{path} = {yaml_value(value)}: {error['msg']}{self._described(loc)}."

    def _unknown_field(self, loc: tuple[Any, ...], meant: str | None) -> str:
        """Name the unknown field and the field it most likely was meant to be."""
        *parent, key = loc
        known = list(self._model_at(tuple(parent)).model_fields)
        target = meant or closest(str(key), known) or self._home_of(str(key))
        if target and target in known:
            target = _dotted((*parent, target))
        hint = f" (did you mean '{target}'?)" if target else ""
        where = f" in {_dotted(tuple(parent))}" if parent else ""
        return f"unknown field '{_dotted(loc)}'{hint}. Known fields{where}: {', '.join(known)}."

    def _annotation_at(self, loc: tuple[Any, ...]) -> Any:
        annotation: Any = self.root
        for part in loc:
            annotation = _strip_optional(annotation)
            if isinstance(part, int):
                args = get_args(annotation)
                annotation = args[0] if args else None
            elif isinstance(annotation, type) and issubclass(annotation, BaseModel) and part in annotation.model_fields:
                annotation = annotation.model_fields[part].annotation
            else:
                return None
        return _strip_optional(annotation)

    def _model_at(self, loc: tuple[Any, ...]) -> type[BaseModel]:
        annotation = self._annotation_at(loc)
        return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else self.root

    def _allowed_values(self, loc: tuple[Any, ...]) -> tuple[Any, ...]:
        annotation = self._annotation_at(loc)
        if get_origin(annotation) is Literal:
            return get_args(annotation)
        if annotation is bool:
            return ("true", "false")
        return ()

    def _described(self, loc: tuple[Any, ...]) -> str:
        if not loc or isinstance(loc[-1], int):
            return ""
        field = self._model_at(loc[:-1]).model_fields.get(loc[-1])
        return f" ({field.description})" if field is not None and field.description else ""

    def _home_of(self, key: str) -> str:
        """Dotted path of the one schema field called `key`, wherever it sits one level down."""
        homes = [
            f"{name}.{key}"
            for name, field in self.root.model_fields.items()
            if isinstance(field.annotation, type)
            and issubclass(field.annotation, BaseModel)
            and key in field.annotation.model_fields
        ]
        homes += [key] if key in self.root.model_fields else []
        return homes[0] if len(homes) == 1 else ""


def _dotted(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _strip_optional(annotation: Any) -> Any:
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) is Union:
        members = [a for a in get_args(annotation) if a is not type(None)]
        annotation = members[0] if len(members) == 1 else annotation
    return annotation
