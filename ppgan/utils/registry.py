"""A small name -> class registry, one instance per kind (generators, datasets, ...).

Imports run one way: `registry` uses `config.check_kwargs` to check a config against the
constructor it names; `config` never imports `registry` (both take `closest` from `errors`).
"""
from .config import check_kwargs, check_values
from .errors import ConfigError, closest

__all__ = ["Registry", "closest"]

# Registries of networks: their positive int defaults are sizes, so a value must be >= 1 too.
NETS = ("generator", "discriminator")


class Registry:
    """Maps names to classes or functions.

    Register with the decorator `@REG.register()` (the object's own `__name__`) or
    `@REG.register("alias", ...)` to add extra names. A name registered twice is a programming
    error (`KeyError` with a traceback); an unknown name in a config is the user's
    (`ConfigError`, one line naming the closest known names).
    """

    def __init__(self, kind):
        self.kind = kind
        self._map = {}

    def register(self, *aliases):
        def deco(obj):
            for name in (obj.__name__,) + tuple(aliases):
                if name in self._map and self._map[name] is not obj:
                    raise KeyError(f"{self.kind} '{name}' is registered twice")
                self._map[name] = obj
            return obj

        return deco

    def get(self, name):
        """The object registered as `name`; ConfigError naming the closest names if unknown."""
        if not isinstance(name, str) or name not in self._map:
            hint = closest(name, self._map)
            msg = f"unknown {self.kind} name '{name}'"
            msg += f"; did you mean {', '.join(hint)}?" if hint else f"; known: {', '.join(sorted(self._map))}"
            raise ConfigError(msg)
        return self._map[name]

    def __contains__(self, name):
        return name in self._map

    def names(self):
        return sorted(self._map)

    def build(self, cfg, **extra):
        """Build the object named by `cfg['name']` with the rest of `cfg` as keyword args.

        `cfg` is not modified. Unknown keyword arguments fail naming the closest accepted ones;
        values of the wrong type (or a network size < 1) fail naming the key, value and what fits.
        """
        obj, kwargs = self.check(cfg, **extra)
        return obj(**kwargs)

    def check(self, cfg, **extra):
        """What `build` checks, without building: (the class, its keyword arguments)."""
        if not isinstance(cfg, dict) or "name" not in cfg:
            raise ConfigError(f"{self.kind} config needs a 'name' key, got {cfg!r}")
        kwargs = dict(cfg)
        name = kwargs.pop("name")
        obj = self.get(name)
        kwargs.update(extra)
        check_kwargs(obj, kwargs, where=f"{self.kind} {name}")
        check_values(obj, kwargs, where=f"{self.kind} {name}", positive_sizes=self.kind in NETS)
        return obj, kwargs
