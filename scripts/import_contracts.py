"""An import-linter contract type of this project: apps import each other only through their public
modules (registered in pyproject.toml's [tool.importlinter] as ``public_modules``; `lint-imports`
puts the checkout on sys.path, so this file is found as ``scripts.import_contracts``).

    [[tool.importlinter.contracts]]
    type = "public_modules"
    apps = ["courseplatform.courses", "courseplatform.submissions", ...]
    public_modules = ["courseplatform.*.models", "courseplatform.submissions.services", ...]

Every direct import from a module of one app to a module of another must land on that app's package
itself, or on one of ``public_modules`` (a public module's submodules are public too). What an app
keeps to itself is private by default: a new module is private until it is listed. Imports inside
one app, and imports of modules that belong to no listed app (settings, core), are not checked.
"""
from __future__ import annotations

import grimp
from importlinter import Contract, ContractCheck, fields, output
from importlinter.application import contract_utils
from importlinter.domain import helpers


class PublicModulesContract(Contract):
    type_name = "public_modules"

    apps = fields.ListField(subfield=fields.ModuleExpressionField())
    public_modules = fields.ListField(subfield=fields.ModuleExpressionField())
    ignore_imports = fields.SetField(subfield=fields.ImportExpressionField(), required=False)
    unmatched_ignore_imports_alerting = fields.EnumField(
        contract_utils.AlertLevel, default=contract_utils.AlertLevel.ERROR)

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        removal = contract_utils.remove_ignored_imports_and_report(
            graph=graph, ignore_imports=self.ignore_imports,  # type: ignore[arg-type]
            unmatched_alerting=self.unmatched_ignore_imports_alerting)  # type: ignore[arg-type]
        apps = sorted(m.name for m in helpers.module_expressions_to_modules(
            graph, self.apps, raise_if_unmatched=True))  # type: ignore[arg-type]
        public = {m.name for m in helpers.module_expressions_to_modules(
            graph, self.public_modules, as_packages=True, raise_if_unmatched=True)}  # type: ignore[arg-type]
        owner = {}
        for app in apps:
            for module in {app} | graph.find_descendants(app):
                owner[module] = app
        illegal = []
        for importer, app in sorted(owner.items()):
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                other = owner.get(imported)
                if other is None or other == app or imported == other or imported in public:
                    continue
                lines = sorted(d["line_number"] for d in graph.get_import_details(importer=importer, imported=imported))
                illegal.append({"importer": importer, "imported": imported, "app": other, "lines": lines})
        return ContractCheck(kept=not illegal, warnings=list(removal.warnings), metadata={"illegal": illegal})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for item in check.metadata["illegal"]:
            output.print_error(
                f"{item['importer']} -> {item['imported']} (l.{', '.join(map(str, item['lines']))}): "
                f"not a public module of {item['app']}", bold=False)
        output.new_line()
        output.print("Import the app's public module instead, or make the module public in pyproject.toml "
                     "(public_modules) if other apps are meant to use it.")
