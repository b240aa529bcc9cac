"""A small name -> class registry, one instance per kind (generators, datasets, ...)."""
import difflib


def closest(name, candidates, n=3):
    """The up to `n` candidates closest to `name`, for 'did you mean' messages."""
    found = difflib.get_close_matches(str(name), list(candidates), n=n, cutoff=0.5)
    if not found:
        low = str(name).lower()
        found = [c for c in candidates if low in c.lower() or c.lower() in low][:n]
    return found


class Registry:
    """Maps names to classes or functions.

    Register with the decorator `@REG.register()` (the object's own `__name__`) or
    `@REG.register("alias", ...)` to add extra names. A name registered twice is an error.
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
        if name not in self._map:
            hint = closest(name, self._map)
            msg = f"unknown {self.kind} name '{name}'"
            msg += f"; did you mean {', '.join(hint)}?" if hint else f"; known: {', '.join(sorted(self._map))}"
            raise KeyError(msg)
        return self._map[name]

    def __contains__(self, name):
        return name in self._map

    def names(self):
        return sorted(self._map)

    def build(self, cfg, **extra):
        """Build the object named by `cfg['name']` with the rest of `cfg` as keyword args.

        `cfg` is not modified. Unknown keyword arguments fail naming the closest accepted ones.
        """
        from .config import check_kwargs  # local: config imports registry helpers

        if not isinstance(cfg, dict) or "name" not in cfg:
            raise KeyError(f"{self.kind} config needs a 'name' key, got {cfg!r}")
        kwargs = dict(cfg)
        name = kwargs.pop("name")
        obj = self.get(name)
        kwargs.update(extra)
        check_kwargs(obj, kwargs, where=f"{self.kind} {name}")
        return obj(**kwargs)
