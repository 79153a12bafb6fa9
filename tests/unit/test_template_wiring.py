"""Least privilege, read from template.yaml itself: each function reaches only the secret it needs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local.stack.template import load_template

TEMPLATE = load_template(Path(__file__).resolve().parents[2] / "template.yaml")
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
FUNCTIONS = {name: r for name, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"}
SECRETS = {name for name, r in RESOURCES.items() if r["Type"] == "AWS::SecretsManager::Secret"}


def secrets_readable_by(function: dict[str, Any]) -> set[str]:
    text = json.dumps(function["Properties"].get("Policies", []))
    return {secret for secret in SECRETS if f'"Ref": "{secret}"' in text or f'"{secret}.Arn"' in text}


@pytest.mark.parametrize(
    ("function", "secrets"),
    [
        ("PrepareWatchFunction", set()),
        ("CreateRunFunction", {"WriteKeySecret"}),
        ("PollRunFunction", {"ReadKeySecret"}),
        ("AlertFunction", {"ReadKeySecret"}),
        ("StartWatchFunction", set()),
        ("IngressFunction", {"IngressSecret"}),
        ("DiscoveryFunction", {"ReadKeySecret"}),
        ("CleanupFunction", {"ReadKeySecret", "WriteKeySecret"}),
    ],
)
def test_each_function_can_read_only_the_secret_it_needs(function, secrets):
    assert secrets_readable_by(FUNCTIONS[function]) == secrets


def test_only_the_create_and_cleanup_functions_are_told_where_the_write_key_is():
    holders = {
        name
        for name, f in FUNCTIONS.items()
        if "TALONIC_WRITE_KEY_SECRET" in f["Properties"].get("Environment", {}).get("Variables", {})
    }
    assert holders == {"CreateRunFunction", "CleanupFunction"}


def test_the_write_key_secret_denies_its_value_to_every_other_principal():
    [policy] = [r["Properties"] for r in RESOURCES.values() if r["Type"] == "AWS::SecretsManager::ResourcePolicy"]
    assert policy["SecretId"] == {"Ref": "WriteKeySecret"}
    [statement] = policy["ResourcePolicy"]["Statement"]
    assert (statement["Effect"], statement["Principal"], statement["Action"]) == (
        "Deny",
        "*",
        "secretsmanager:GetSecretValue",
    )
    assert statement["Condition"] == {
        "ArnNotEquals": {
            "aws:PrincipalArn": [
                {"Fn::GetAtt": ["CreateRunFunctionRole", "Arn"]},
                {"Fn::GetAtt": ["CleanupFunctionRole", "Arn"]},
            ]
        }
    }


def test_no_function_policy_uses_a_wildcard_resource():
    for name, function in FUNCTIONS.items():
        for policy in function["Properties"].get("Policies", []):
            for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
                assert statement.get("Resource") != "*", name


def test_every_function_has_a_log_group_with_retention():
    groups = [r["Properties"] for r in RESOURCES.values() if r["Type"] == "AWS::Logs::LogGroup"]
    named = {json.dumps(g["LogGroupName"]) for g in groups}
    for name in FUNCTIONS:
        assert any(name in text for text in named), f"{name} has no log group"
    assert all(g["RetentionInDays"] == {"Ref": "LogRetentionDays"} for g in groups)
