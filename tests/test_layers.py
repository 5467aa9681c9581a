"""The package's layers, read from its own imports (ast): every import goes down, never up or sideways.

    cli -> app -> {message, store, smtp, imap, auth} -> the base (settings, status, errors, ...)

A module may import from its own package and from any lower layer. Packages of the middle layer import
each other only where SIBLINGS allows it. Only cli/ prints or reads the terminal.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "jobmail"
RANK = {"cli": 3, "app": 2, "message": 1, "store": 1, "smtp": 1, "imap": 1, "auth": 1}
BASE = 0  # the modules directly in jobmail/: settings, status, errors, clock, when, addresses, providers ...
# Middle-layer packages that may use each other: (importer, imported) and why.
SIBLINGS = {
    ("smtp", "auth"): "the account check looks up the password in the keyring between connecting and login",
    ("imap", "smtp"): "IMAP verifies certificates exactly as SMTP does: the same SSL context (SMTP_CA_FILE)",
}


def group(module: str) -> str:
    """`jobmail.app.sending` -> "app"; `jobmail.settings` -> "settings" (a base module)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def rank(module: str) -> int:
    return RANK.get(group(module), BASE)


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(relative.parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports_of(module: str, path: Path) -> list[tuple[int, str]]:
    """(line, module imported) for every import of a jobmail module, at any depth of the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [f"{target}.{alias.name}" for alias in node.names]
            # `from jobmail.smtp import client` imports the module jobmail.smtp.client
            found += [(node.lineno, name if name in MODULES else target) for name in names]
    return [(line, name) for line, name in found if name == "jobmail" or name.startswith("jobmail.")]


MODULES = modules()


def offences(module: str, imported: str) -> str | None:
    """Why this import goes against the layers, or None when it is fine."""
    if imported in ("jobmail",) or group(imported) == group(module):
        return None
    here, there = rank(module), rank(imported)
    if there < here:
        return None
    if here == there == BASE:
        return None  # the base modules are leaves of one floor
    if (group(module), group(imported)) in SIBLINGS:
        return None
    return "up" if there > here else "sideways"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down(module):
    wrong = [
        f"{MODULES[module].name}:{line} imports {imported} ({why})"
        for line, imported in imports_of(module, MODULES[module])
        if (why := offences(module, imported))
    ]
    assert wrong == [], f"{module} breaks the layers: {wrong}"


def test_command_modules_do_not_import_each_other():
    commands = {name for name in MODULES if name.startswith("jobmail.cli.") and name.endswith("_cmd")}
    wrong = [
        f"{module} imports {imported}"
        for module in sorted(commands)
        for _, imported in imports_of(module, MODULES[module])
        if imported in commands and imported != module
    ]
    assert wrong == []


def test_only_the_cli_prints_or_prompts():
    wrong = []
    for module, path in MODULES.items():
        if group(module) == "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("print", "input"):
                wrong.append(f"{module}:{node.lineno} calls {node.func.id}()")
            if isinstance(node, ast.Attribute) and node.attr in ("stdout", "stderr", "stdin"):
                if isinstance(node.value, ast.Name) and node.value.id == "sys":
                    wrong.append(f"{module}:{node.lineno} uses sys.{node.attr}")
    assert wrong == []


def test_the_checker_itself_sees_a_wrong_import(tmp_path):
    """The walk above would catch an upward or sideways import (so the tests above can fail)."""
    path = tmp_path / "x.py"
    path.write_text("from jobmail.cli.output import Console\nfrom ..store import sentlog\n", encoding="utf-8")
    found = imports_of("jobmail.smtp.x", path)
    assert found == [(1, "jobmail.cli.output"), (2, "jobmail.store.sentlog")]
    assert offences("jobmail.smtp.x", "jobmail.cli.output") == "up"
    assert offences("jobmail.smtp.x", "jobmail.store.sentlog") == "sideways"
    assert offences("jobmail.app.sending", "jobmail.smtp.client") is None
    assert offences("jobmail.settings", "jobmail.message.compose") == "up"
