"""Name -> transfer method; `import swr_keras.methods` registers the built-in ones."""

import dataclasses

from swr_keras.methods.base import Method

_METHODS = {}


def register(cls):
    """Class decorator: registers one instance of a `Method` subclass under `cls.name`.

    Checks the contract's static parts so that a broken method fails at
    import, not in the middle of a job: a lower_snake_case name not yet
    taken, a label and a one-line help, and options that are a dataclass
    whose fields have defaults, help and the method's name as prefix.
    """
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise TypeError(f"register takes a Method subclass. Received: {cls!r}")
    name = cls.name
    if not name or not name.isidentifier() or name != name.lower():
        raise ValueError(f"A method name must be lower_snake_case. Received: name={name!r}")
    if name in _METHODS:
        raise ValueError(f"A method named {name!r} is registered already; choose another name.")
    if not cls.label or not cls.help or "\n" in cls.help:
        raise ValueError(f"Method {name!r} needs a label and a one-line help.")
    if not dataclasses.is_dataclass(cls.Options):
        raise ValueError(f"Method {name!r}: Options must be a dataclass. Received: {cls.Options}")
    for field in dataclasses.fields(cls.Options):
        if not field.name.startswith(f"{name}_"):
            raise ValueError(
                f"Method {name!r}: option {field.name!r} must start with '{name}_' "
                "(options become flags shared by every method)."
            )
        if field.default is dataclasses.MISSING or not field.metadata.get("help"):
            raise ValueError(f"Method {name!r}: option {field.name!r} needs a default and a help.")
    _METHODS[name] = cls()
    return cls


def get(name):
    """The registered method called `name`; a one-line ValueError listing the registry."""
    if name not in _METHODS:
        raise ValueError(
            f"Unknown method {name!r}. Choose one of: {', '.join(names())}. "
            f"Received: method={name!r}"
        )
    return _METHODS[name]


def names():
    """Registered method names, in registration order."""
    return tuple(_METHODS)


def methods():
    """Registered `Method` instances, in registration order."""
    return tuple(_METHODS.values())
