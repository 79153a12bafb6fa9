"""Keys from Secrets Manager (moto), through Powertools Parameters."""

from __future__ import annotations

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from moto import mock_aws

from talonic_watchdog.api_keys import SecretsManagerKeySource, StaticKeySource, parse_secret_value
from talonic_watchdog.errors import ConfigurationError

KEY = "tlnc_live_0a1b2c3d4e5f"


@pytest.fixture
def secrets():  # type: ignore[no-untyped-def]
    with mock_aws():
        yield boto3.client("secretsmanager")


@pytest.mark.parametrize(
    "value", [KEY, f"  {KEY}\n", f'{{"api_key": "{KEY}"}}', f'{{"api_key": "{KEY}", "note": "x"}}']
)
def test_a_secret_holds_the_bare_key_or_json(value):
    # given a secret value in one of the accepted forms, when parsed, then the key comes out
    assert parse_secret_value(value, secret_id="read") == KEY


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ('{"api_key": ""}', "without a non-empty"),
        ('{"key": "tlnc_x"}', "without a non-empty"),
        ('{"api_key": "tlnc_', "does not parse"),
        ("Bearer tlnc_live_abc", "does not hold a Talonic API key"),
        ("sk_live_abc", "does not hold a Talonic API key"),
    ],
)
def test_a_bad_secret_is_a_configuration_error_that_hides_the_value(value, reason):
    # given a malformed secret value, when parsed, then a ConfigurationError naming the secret, not the value
    with pytest.raises(ConfigurationError, match=reason) as caught:
        parse_secret_value(value, secret_id="talonic/read")
    assert "talonic/read" in str(caught.value)
    if value.strip():
        assert value.strip() not in str(caught.value)


def test_keys_are_cached_until_refreshed(secrets):
    # given a secret holding a key, read once through the source
    secrets.create_secret(Name="talonic/read", SecretString=KEY)
    source = SecretsManagerKeySource("talonic/read", provider=SecretsProvider(boto3_client=secrets))
    assert source.get() == KEY
    # when the secret is rotated
    secrets.put_secret_value(SecretId="talonic/read", SecretString='{"api_key": "tlnc_live_rotated"}')
    # then the cached key is served until a refresh fetches the new one
    assert source.get() == KEY
    assert source.refresh() == "tlnc_live_rotated"
    assert source.get() == "tlnc_live_rotated"


def test_a_missing_secret_is_a_configuration_error(secrets):
    # given no such secret, when the key is read, then a ConfigurationError that names it
    source = SecretsManagerKeySource("talonic/missing", provider=SecretsProvider(boto3_client=secrets))
    with pytest.raises(ConfigurationError, match="cannot read secret talonic/missing"):
        source.get()


def test_an_empty_secret_as_created_by_the_stack_says_what_to_do(secrets):
    # given the placeholder value the stack creates
    secrets.create_secret(Name="talonic/write", SecretString='{"api_key": ""}')
    source = SecretsManagerKeySource("talonic/write", provider=SecretsProvider(boto3_client=secrets))
    # when read, then the error says the key is missing
    with pytest.raises(ConfigurationError, match="without a non-empty string"):
        source.get()


def test_a_static_key_is_checked_too():
    with pytest.raises(ConfigurationError):
        StaticKeySource("not-a-key")
    assert StaticKeySource(KEY).refresh() == KEY
