"""Reading a SAM template: short-form intrinsics, parameters, conditions, Globals and reference resolution.

PyYAML's safe loader rejects CloudFormation's short forms (``!Ref``, ``!Sub``...), so ``load_template``
uses a loader that turns each into its long form (``{"Ref": ...}``, ``{"Fn::Sub": ...}``). ``Resolver``
then evaluates intrinsics the way CloudFormation does, asking a ``ResourceLookup`` for the values of
resources, which the local stack provides as it creates them in moto.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
PARTITION = "aws"
DEFAULT_STACK_NAME = "talonic-watchdog-local"

NO_VALUE: Any = type("NoValue", (), {"__repr__": lambda self: "AWS::NoValue"})()
"""What ``!Ref AWS::NoValue`` resolves to: the enclosing property is removed."""

_SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")

#: SAM's Globals section each resource type takes its defaults from.
_GLOBALS_SECTIONS = {
    "AWS::Serverless::Function": "Function",
    "AWS::Serverless::StateMachine": "StateMachine",
}


class TemplateError(ValueError):
    """The template (or a parameter given for it) cannot be used: the message names what and where."""


class UnresolvedReferenceError(TemplateError):
    """A reference names a resource that does not exist, is not created yet, or whose attribute is unknown."""


class ResourceLookup(Protocol):
    """What ``Ref`` and ``Fn::GetAtt`` of a resource evaluate to."""

    def ref(self, logical_id: str) -> Any: ...

    def get_att(self, logical_id: str, attribute: str) -> Any: ...


# -- loading ---------------------------------------------------------------------------------------------


class _CloudFormationLoader(yaml.SafeLoader):
    """A safe loader that knows CloudFormation's short-form intrinsic tags and reads dates as strings."""


def _construct_intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        logical_id, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [logical_id, attribute]}
    return {f"Fn::{tag_suffix}": value}


def _construct_timestamp_as_string(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


_CloudFormationLoader.add_multi_constructor("!", _construct_intrinsic)
_CloudFormationLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp_as_string)


def load_template(path: Path) -> dict[str, Any]:
    """Parse a CloudFormation/SAM YAML (or JSON) template into plain data with long-form intrinsics."""
    body = yaml.load(path.read_text(encoding="utf-8"), Loader=_CloudFormationLoader)  # noqa: S506 - safe loader subclass
    if not isinstance(body, dict) or not isinstance(body.get("Resources"), dict):
        raise TemplateError(f"{path} is not a CloudFormation template (no Resources section)")
    return body


# -- parameters, Globals ---------------------------------------------------------------------------------


def resolve_parameters(declared: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """Each parameter's value (given, else its default), validated as CloudFormation validates it.

    Values are strings, as CloudFormation passes them; list types become lists of strings.
    """
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise TemplateError(f"unknown parameter(s) {', '.join(unknown)}: the template declares {sorted(declared)}")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in given:
            raw = given[name]
        elif "Default" in spec:
            raw = spec["Default"]
        else:
            raise TemplateError(f"parameter {name} has no default: give it a value")
        text = _parameter_text(raw)
        _validate_parameter(name, spec, text)
        kind = str(spec.get("Type", "String"))
        is_list = kind == "CommaDelimitedList" or kind.startswith("List<")
        values[name] = [item.strip() for item in text.split(",")] if is_list else text
    return values


def _parameter_text(raw: Any) -> str:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, list | tuple):
        return ",".join(_parameter_text(item) for item in raw)
    return str(raw)


def _validate_parameter(name: str, spec: Mapping[str, Any], text: str) -> None:
    allowed = spec.get("AllowedValues")
    if allowed is not None and text not in {_parameter_text(value) for value in allowed}:
        raise TemplateError(f"parameter {name}={text!r} is not one of its AllowedValues {allowed}")
    pattern = spec.get("AllowedPattern")
    if pattern is not None and re.fullmatch(str(pattern), text) is None:
        raise TemplateError(f"parameter {name}={text!r} does not match its AllowedPattern {pattern}")
    if "MinLength" in spec and len(text) < int(spec["MinLength"]):
        raise TemplateError(f"parameter {name}={text!r} is shorter than its MinLength {spec['MinLength']}")
    if "MaxLength" in spec and len(text) > int(spec["MaxLength"]):
        raise TemplateError(f"parameter {name}={text!r} is longer than its MaxLength {spec['MaxLength']}")
    if spec.get("Type") != "Number":
        return
    try:
        number = float(text)
    except ValueError:
        raise TemplateError(f"parameter {name}={text!r} is not a Number") from None
    if "MinValue" in spec and number < float(spec["MinValue"]):
        raise TemplateError(f"parameter {name}={text} is below its MinValue {spec['MinValue']}")
    if "MaxValue" in spec and number > float(spec["MaxValue"]):
        raise TemplateError(f"parameter {name}={text} is above its MaxValue {spec['MaxValue']}")


def apply_globals(resources: Mapping[str, Any], globals_section: Mapping[str, Any]) -> dict[str, Any]:
    """Each resource with SAM's Globals merged into its Properties, as the SAM transform merges them:
    maps merge (the resource's keys win), lists are the Globals' items then the resource's, and any other
    value (intrinsics included) is the resource's when it has one."""
    merged: dict[str, Any] = {}
    for logical_id, resource in resources.items():
        section = _GLOBALS_SECTIONS.get(resource.get("Type", ""))
        defaults = globals_section.get(section) if section else None
        if defaults:
            resource = {**resource, "Properties": _merge(defaults, resource.get("Properties") or {})}
        merged[logical_id] = resource
    return merged


def _is_intrinsic(value: Any) -> bool:
    if not isinstance(value, dict) or len(value) != 1:
        return False
    key = str(next(iter(value)))
    return key in ("Ref", "Condition") or key.startswith("Fn::")


def _merge(global_value: Any, local_value: Any) -> Any:
    if isinstance(global_value, dict) and isinstance(local_value, dict):
        if _is_intrinsic(global_value) or _is_intrinsic(local_value):
            return local_value
        merged = dict(global_value)
        for key, value in local_value.items():
            merged[key] = _merge(global_value[key], value) if key in global_value else value
        return merged
    if isinstance(global_value, list) and isinstance(local_value, list):
        return [*global_value, *local_value]
    return local_value


# -- references ------------------------------------------------------------------------------------------


def referenced_names(node: Any) -> set[str]:
    """Every name a node refers to through Ref, Fn::GetAtt or Fn::Sub (parameters and pseudo parameters
    included: callers keep the names they care about)."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= referenced_names(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value.split(".", 1)[0] if isinstance(value, str) else str(value[0]))
            elif key == "Fn::Sub":
                text, variables = (value, {}) if isinstance(value, str) else (value[0], value[1])
                found |= {name.split(".", 1)[0] for name in _sub_names(text) if name not in variables}
                found |= referenced_names(variables)
            else:
                found |= referenced_names(value)
    return found


def _sub_names(text: str) -> Iterable[str]:
    return (match.strip() for match in _SUB_VARIABLE.findall(text) if not match.startswith("!"))


@dataclass(frozen=True)
class PseudoParameters:
    stack_name: str = DEFAULT_STACK_NAME
    region: str = REGION
    account_id: str = ACCOUNT_ID
    partition: str = PARTITION

    def values(self) -> dict[str, Any]:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": self.stack_name,
            "AWS::Partition": self.partition,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": f"arn:{self.partition}:cloudformation:{self.region}:{self.account_id}:stack/"
            f"{self.stack_name}/00000000-0000-0000-0000-000000000000",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }


class Resolver:
    """Evaluates CloudFormation intrinsics against parameters, conditions, mappings and created resources."""

    def __init__(
        self,
        *,
        parameters: Mapping[str, Any],
        pseudo: PseudoParameters,
        conditions: Mapping[str, Any],
        mappings: Mapping[str, Any],
        lookup: ResourceLookup,
    ) -> None:
        self._names = {**pseudo.values(), **parameters}
        self._region = pseudo.region
        self._condition_definitions = conditions
        self._condition_values: dict[str, bool] = {}
        self._mappings = mappings
        self._lookup = lookup
        self._functions: dict[str, Callable[[Any], Any]] = {
            "Ref": self._ref,
            "Fn::GetAtt": self._get_att,
            "Fn::Sub": self._sub,
            "Fn::Join": self._join,
            "Fn::Select": self._select,
            "Fn::Split": self._split,
            "Fn::If": self._if,
            "Fn::Equals": self._equals,
            "Fn::Not": lambda args: not self._boolean(args[0]),
            "Fn::And": lambda args: all(self._boolean(arg) for arg in args),
            "Fn::Or": lambda args: any(self._boolean(arg) for arg in args),
            "Condition": self.condition,
            "Fn::FindInMap": self._find_in_map,
            "Fn::Base64": lambda arg: base64.b64encode(str(self.resolve(arg)).encode()).decode(),
            "Fn::GetAZs": lambda _arg: [f"{self._region}{zone}" for zone in "abcdef"],
        }

    def condition(self, name: str) -> bool:
        if name not in self._condition_values:
            if name not in self._condition_definitions:
                raise TemplateError(f"unknown condition {name}")
            self._condition_values[name] = self._boolean(self._condition_definitions[name])
        return self._condition_values[name]

    def resolve(self, value: Any) -> Any:
        """``value`` with every intrinsic evaluated; AWS::NoValue removes the key or list item holding it."""
        if isinstance(value, list):
            items = (self.resolve(item) for item in value)
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            function = self._functions.get(key)
            if function is not None:
                return function(argument)
            if key.startswith("Fn::"):
                raise TemplateError(f"intrinsic {key} is not supported by the local stack")
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def text(self, value: Any) -> str:
        """A resolved value as CloudFormation renders it into a string property."""
        resolved = self.resolve(value)
        if isinstance(resolved, bool):
            return "true" if resolved else "false"
        if isinstance(resolved, dict | list):
            raise TemplateError(f"expected a string, got {resolved!r}")
        return str(resolved)

    def _boolean(self, value: Any) -> bool:
        resolved = self.resolve(value)
        if isinstance(resolved, bool):
            return resolved
        if isinstance(resolved, str) and resolved.lower() in ("true", "false"):
            return resolved.lower() == "true"
        raise TemplateError(f"expected a condition (true/false), got {resolved!r}")

    def _ref(self, name: str) -> Any:
        if name in self._names:
            return self._names[name]
        return self._lookup.ref(name)

    def _get_att(self, argument: Any) -> Any:
        if isinstance(argument, str):
            logical_id, _, attribute = argument.partition(".")
        else:
            logical_id, attribute = str(argument[0]), self.text(argument[1])
        return self._lookup.get_att(logical_id, attribute)

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
        values = {name: self.text(value) for name, value in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in values:
                return values[name]
            if "." in name and name not in self._names:
                logical_id, attribute = name.split(".", 1)
                return self.text(self._lookup.get_att(logical_id, attribute))
            return self.text(self._ref(name))

        return _SUB_VARIABLE.sub(replace, str(text))

    def _join(self, argument: list[Any]) -> str:
        delimiter, items = argument
        return str(delimiter).join(self.text(item) for item in self.resolve(items))

    def _select(self, argument: list[Any]) -> Any:
        index, items = argument
        return self.resolve(items)[int(self.text(index))]

    def _split(self, argument: list[Any]) -> list[str]:
        delimiter, source = argument
        return self.text(source).split(str(delimiter))

    def _if(self, argument: list[Any]) -> Any:
        name, when_true, when_false = argument
        return self.resolve(when_true if self.condition(name) else when_false)

    def _equals(self, argument: list[Any]) -> bool:
        left, right = (self.resolve(item) for item in argument)
        return bool(_comparable(left) == _comparable(right))

    def _find_in_map(self, argument: list[Any]) -> Any:
        map_name, top_key, second_key = (self.text(item) for item in argument)
        try:
            return self._mappings[map_name][top_key][second_key]
        except KeyError:
            raise TemplateError(f"Fn::FindInMap: {map_name}/{top_key}/{second_key} is not in Mappings") from None


def _comparable(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value
