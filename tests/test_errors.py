"""Every error jupyreg raises carries a stable machine-readable ``code`` (one per class),
its ``message`` and, where there is one, a ``hint`` and the ``field`` at fault, so that
each front end words it without reading its text."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import jupyreg
from jupyreg import errors
from jupyreg.errors import InvalidArgument, NotFound, RegistryError, ask_for, front_end


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def test_every_registry_error_has_its_own_code() -> None:
    for module in pkgutil.walk_packages(jupyreg.__path__, "jupyreg."):
        try:  # a module with an optional dependency missing defines no error we can see
            importlib.import_module(module.name)
        except ImportError:
            continue
    classes = [RegistryError, *_subclasses(RegistryError)]
    classes = [c for c in dict.fromkeys(classes) if c.__module__.startswith("jupyreg")]
    assert {c.__name__ for c in classes} >= {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, RegistryError)
    }
    codes = {}
    for cls in classes:
        assert "code" in vars(cls), f"{cls.__name__} inherits its code"
        assert isinstance(cls.code, str) and cls.code, cls.__name__
        assert cls.code not in codes, f"{cls.__name__} and {codes[cls.code]} share {cls.code}"
        codes[cls.code] = cls.__name__


def test_the_message_and_hint_make_the_text() -> None:
    error = NotFound("no request 'x'", hint="`jupyreg requests` lists the pending ones")
    assert str(error) == "no request 'x': `jupyreg requests` lists the pending ones"
    assert (error.message, error.code, error.field) == ("no request 'x'", "not_found", None)
    assert str(NotFound("plain")) == "plain" and NotFound("plain").hint is None


@pytest.mark.parametrize(
    ("name", "wording"),
    [
        ("python", "pass reason='why this change'"),
        ("cli", "pass --reason TEXT"),
        ("magic", "pass --reason TEXT"),
    ],
)
def test_each_front_end_asks_for_a_field_in_its_own_words(name: str, wording: str) -> None:
    from jupyreg.lifecycle import require_reason

    with front_end(name), pytest.raises(InvalidArgument) as refused:
        require_reason(" ", "promote")
    assert ask_for("reason") == "pass reason='why this change'"  # outside: the Python API's
    assert (refused.value.message, refused.value.hint) == ("promote needs a reason", wording)
    assert refused.value.field == "reason"
