"""The .env parser: the forms we accept, and a clear error (never echoing a value) for the rest."""

from __future__ import annotations

import pytest

from retag.cli.dotenv import DotenvError, parse_dotenv


def test_accepted_forms() -> None:
    text = "\n".join(
        [
            "# registry",
            "",
            "ACR_LOGIN_SERVER=myregistry.azurecr.io",
            "  ACR_CREDENTIAL = anonymous  ",
            "export RETAG_SOURCE_TAGS=latest,stable",
            "PRUNE_KEEP=5 # keep five",
            "RETAG_TAG_TEMPLATE='{tag}_{timestamp} # literal'",
            'DOUBLE="a\\"b\\\\c\\nd"',
            "EMPTY=",
            "HASH_IN_VALUE=a#b",
            "EQUALS=a=b",
            "QUOTED_COMMENT='x' # after",
        ]
    )
    assert parse_dotenv(text) == {
        "ACR_LOGIN_SERVER": "myregistry.azurecr.io",
        "ACR_CREDENTIAL": "anonymous",
        "RETAG_SOURCE_TAGS": "latest,stable",
        "PRUNE_KEEP": "5",
        "RETAG_TAG_TEMPLATE": "{tag}_{timestamp} # literal",
        "DOUBLE": 'a"b\\c\nd',
        "EMPTY": "",
        "HASH_IN_VALUE": "a#b",
        "EQUALS": "a=b",
        "QUOTED_COMMENT": "x",
    }


def test_later_lines_win_and_crlf_is_fine() -> None:
    assert parse_dotenv("A=1\r\nA=2\r\n") == {"A": "2"}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("A=1\nSECRET_WITHOUT_EQUALS hunter2", ":2: expected KEY=VALUE"),
        ("1BAD=x", "invalid name '1BAD'"),
        ("BAD-NAME=x", "invalid name 'BAD-NAME'"),
        ("A='hunter2", "unterminated single-quoted value"),
        ('A="hunter2', "unterminated double-quoted value"),
        ("A='x' hunter2", "unexpected text after the closing quote"),
    ],
)
def test_errors_name_file_and_line_without_the_value(text: str, fragment: str) -> None:
    with pytest.raises(DotenvError) as caught:
        parse_dotenv(text, source="conf/.env")
    message = str(caught.value)
    assert message.startswith("conf/.env:")
    assert fragment in message
    assert "hunter2" not in message
