"""Plugin discovery: adapters and metrics registered through entry points, model cards in ``models/``."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, unknown_name

ADAPTER_GROUP = "i2vbench.adapters"
METRIC_GROUP = "i2vbench.metrics"


@lru_cache(maxsize=None)
def plugin_targets(group: str) -> dict[str, str]:
    """Name -> ``module:attr`` of every plugin installed under an entry-point group."""
    return {ep.name: ep.value for ep in entry_points(group=group)}


def load_object(target: str) -> Any:
    """Import ``module:attr``."""
    module, _, attr = target.partition(":")
    try:
        return getattr(import_module(module), attr)
    except ImportError as exc:
        raise ConfigError(f"cannot load plugin {target!r}: {exc}; make sure {module!r} is importable by the Python "
                          "that runs i2vbench (pip install its package there, or add its folder to PYTHONPATH)") from exc
    except AttributeError as exc:
        raise ConfigError(f"cannot load plugin {target!r}: {exc}") from exc


def load_plugin(group: str, name: str, kind: str, base: type | None = None) -> Any:
    """The class registered as ``name`` in ``group`` (or given directly as ``module:Class``), which must be a
    subclass of ``base`` and set its own ``name``."""
    targets = plugin_targets(group)
    if name in targets or ":" in name:
        target = targets.get(name, name)
        cls = load_object(target)
    else:
        error = unknown_name(kind, name, list(targets))
        if "." in name:
            module, _, attr = name.rpartition(".")
            error = ConfigError(f"{error}; to name a class, write module:Class ({module}:{attr})")
        raise error
    if base is not None and not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(f"{kind} {target!r} is {cls!r}, not a subclass of {base.__module__}.{base.__name__}")
    if base is not None and not isinstance(getattr(cls, "name", None), str):
        raise ConfigError(f"{kind} class {target!r} sets no name: give it one (name = \"{name.split(':')[-1].lower()}\")")
    return cls


def model_dirs() -> list[Path]:
    """Folders searched for model cards: the repo's ``models/`` and those in ``I2VBENCH_MODEL_PATH``."""
    extra = [Path(p) for p in os.environ.get("I2VBENCH_MODEL_PATH", "").split(os.pathsep) if p]
    return extra + [Path(__file__).resolve().parents[1] / "models"]


@dataclass
class ModelCard:
    """A model card: which adapter to use, its default settings, and what to cite."""

    name: str
    adapter: str
    settings: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    paper: str | None = None
    licence: str | None = None
    weights: str | None = None
    path: Path | None = None

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "path"}
        d["path"] = str(self.path) if self.path else None
        return d


_CARD_FIELDS = {"name", "adapter", "settings", "description", "paper", "licence", "weights"}


def read_card(path: Path) -> ModelCard:
    """Parse and check one YAML model card."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"model card {path} cannot be read: {exc}") from exc
    if not isinstance(data, dict) or "adapter" not in data:
        raise ConfigError(f"model card {path} must be a mapping with at least an 'adapter' field")
    unknown = sorted(set(data) - _CARD_FIELDS)
    if unknown:
        raise ConfigError(f"model card {path}: unknown field(s) {unknown}; allowed: {sorted(_CARD_FIELDS)}")
    settings = data.get("settings") or {}
    if not isinstance(settings, dict):
        raise ConfigError(f"model card {path}: 'settings' must be a mapping")
    return ModelCard(**{**data, "name": data.get("name", path.stem), "settings": settings, "path": path})


def list_cards(broken: dict[Path, str] | None = None) -> dict[str, ModelCard]:
    """Every model: cards found in the model folders, plus adapters that have no card of their own. A card
    that cannot be read is left out (one bad file must not stop every command) and, given ``broken``, put
    there with the reason."""
    cards: dict[str, ModelCard] = {}
    for folder in reversed(model_dirs()):
        for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
            try:
                card = read_card(path)
            except ConfigError as exc:
                if broken is not None:
                    broken[path] = str(exc)
                continue
            cards[card.name] = card
    for name in plugin_targets(ADAPTER_GROUP):
        cards.setdefault(name, ModelCard(name=name, adapter=name))
    return cards


_SETTING_LINE = re.compile(r"^\s+(\w+):[^#]*#\s?(.*)$")
_COMMENT_LINE = re.compile(r"^\s+#\s?(.*)$")


def setting_notes(card: ModelCard) -> dict[str, str]:
    """The comment beside each setting of a YAML card (continued on the comment-only lines below it), so that
    a card's explanations can be shown with its settings; empty for cards without a file."""
    if card.path is None or not card.path.is_file():
        return {}
    notes: dict[str, str] = {}
    key, in_settings = None, False
    for line in card.path.read_text().splitlines():
        if not line.startswith((" ", "\t")):
            in_settings, key = line.startswith("settings:"), None
            continue
        if not in_settings:
            continue
        if (setting := _SETTING_LINE.match(line)) is not None:
            key = setting.group(1)
            notes[key] = setting.group(2).strip()
        elif key is not None and (comment := _COMMENT_LINE.match(line)) is not None:
            notes[key] = f"{notes[key]} {comment.group(1).strip()}".strip()
        else:
            key = None
    return notes


def find_card(model: str) -> ModelCard:
    """Resolve ``--model``: a path to a YAML card, a card name, or an adapter name."""
    path = Path(model)
    if path.suffix in (".yaml", ".yml"):
        if path.is_file():
            return read_card(path)
        raise ConfigError(f"model card {path} not found; give the path of a YAML card, or a name from "
                          "'i2vbench list models'")
    broken: dict[Path, str] = {}
    cards = list_cards(broken)
    if model in cards:
        return cards[model]
    for bad, reason in broken.items():
        if bad.stem == model:  # most likely the card meant: say what is wrong with it
            raise ConfigError(reason)
    error = unknown_name("model", model, list(cards))
    if broken:
        error = ConfigError(f"{error}; these cards could not be read: {'; '.join(broken.values())}")
    raise error
