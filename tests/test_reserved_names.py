"""Reserved names in any spelling: look-alike characters do not get around them.

A tag key is jupyreg's when it reads as ``jupyreg.`` followed by anything; an alias is a
stage alias when it reads as ``production`` or ``staging``, the whole word: other words
stay the user's, even those containing one.
"""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from jupyreg import Registry, tags
from jupyreg.errors import InvalidArgument

RESERVED_KEYS = [
    "jupyreg.stage",
    " JUPYREG.Stage",
    "\uff4aupyreg.stage",  # fullwidth j
    "jupyr\u0435g.stage",  # Cyrillic е
    "jupyreg\u200b.stage",  # a zero-width space
    "\u200b jupyreg.stage",
    "jup\u0443reg.author",  # Cyrillic у
    "\U0001d423upyreg.x",  # mathematical bold j
]
USER_KEYS = ["team", "jupyter.kernel", "jupyreg", "my.jupyreg.x", "jupyregx.y", "\uff54eam"]
RESERVED_ALIASES = [
    "production",
    " Staging ",
    "PRODUCTION",
    "\uff50roduction",  # fullwidth p
    "Stag\u0131ng",  # dotless i
    "\u0455taging",  # Cyrillic ѕ
    "pr\u043eduction",  # Cyrillic о
    "\u0440roduction",  # Cyrillic р
    "stag\u200ding",  # a zero-width joiner
]
USER_ALIASES = [
    "prod",
    "champion",
    "challenger",
    "production-candidate",
    "pre-production",
    "staging2",
    "stage",
    "\uff50rod",
]


@pytest.mark.parametrize("key", RESERVED_KEYS)
def test_a_key_that_reads_as_jupyregs_is_reserved(key: str) -> None:
    assert tags.is_reserved(key)


@pytest.mark.parametrize("key", USER_KEYS)
def test_other_keys_stay_the_users(key: str) -> None:
    assert not tags.is_reserved(key)


@pytest.mark.parametrize("alias", RESERVED_ALIASES)
def test_an_alias_that_reads_as_a_stage_alias_is_reserved(alias: str) -> None:
    assert tags.is_reserved_alias(alias)


@pytest.mark.parametrize("alias", USER_ALIASES)
def test_other_aliases_stay_the_users(alias: str) -> None:
    assert not tags.is_reserved_alias(alias)


@pytest.mark.parametrize("key", ["\uff4aupyreg.stage", "jupyreg.\u0455tage", " jupyreg.stage"])
def test_a_look_alike_jupyreg_key_cannot_be_set_on_a_new_version(key: str) -> None:
    """Registration writes jupyreg's keys in lower-case ASCII: any other spelling of one
    on a new version would pass for it (a stage that no lifecycle step gave)."""
    assert tags.written_by_lifecycle_only(key)
    assert not tags.written_by_lifecycle_only(tags.STAGE_TAG)
    assert not tags.written_by_lifecycle_only("jupyreg.git.commit")


def test_registering_with_a_look_alike_jupyreg_tag_writes_nothing(
    alice: Registry, model, sqlite_uri: str
) -> None:
    with pytest.raises(InvalidArgument, match="'\uff4aupyreg.stage' reads as jupyreg's"):
        alice.register(model, "fraud", tags={"\uff4aupyreg.stage": "Production"})
    assert MlflowClient(sqlite_uri).search_registered_models() == []


def test_the_ascii_fast_path_reads_as_unicodes_confusables_list() -> None:
    """Keys in plain ASCII skip the confusables library: their readings are the table's."""
    import string

    from jupyreg.tags import ASCII_LOOKALIKES, unicode_readings

    found = {}
    for char in string.printable.strip():
        readings = {r for r in unicode_readings(char) if r.isascii() and len(r) == 1}
        extra = "".join(sorted(readings - {char.casefold()}))
        if extra:
            found[char] = extra
    assert found == {k: "".join(sorted(v)) for k, v in ASCII_LOOKALIKES.items()}
