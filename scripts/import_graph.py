#!/usr/bin/env python3
"""edgert's import graph, from the source (nothing is imported): every `import` and
`from ... import` of an edgert module, at module level or inside a function, and every use of
another module's private (underscore) names.

    scripts/import_graph.py            the graph, one module and what it imports per line
    scripts/import_graph.py --dot      the same as Graphviz (| dot -Tsvg > imports.svg)
    scripts/import_graph.py --check    only the problems: import circles and private names
                                       used across modules; exit status 1 if there are any
"""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "edgert"


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> its file, for every .py file of the package."""
    found = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The edgert module ``name`` refers to (a module, or the module defining a name)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


class _Imports(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool, known: dict[str, Path]):
        self.module, self.known = module, known
        self.base = module if is_package else module.rpartition(".")[0]
        self.edges: set[str] = set()
        self.aliases: dict[str, str] = {}       # local name -> edgert module it names
        self.private: list[tuple[int, str]] = []

    def _add(self, target: str | None) -> None:
        if target and target != self.module:
            self.edges.add(target)

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            if a.name.split(".")[0] == PACKAGE:
                target = _resolve(a.name, self.known)
                self._add(target)
                if a.asname:
                    self.aliases[a.asname] = target
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.base
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            source = f"{base}.{node.module}" if node.module else base
        else:
            source = node.module or ""
        if source.split(".")[0] != PACKAGE:
            return
        for a in node.names:
            sub = f"{source}.{a.name}"
            if sub in self.known:                      # a submodule
                self._add(sub)
                self.aliases[a.asname or a.name] = sub
            else:                                      # a name defined in ``source``
                self._add(_resolve(source, self.known))
                if a.name.startswith("_") and not a.name.startswith("__"):
                    self.private.append((node.lineno, f"{source}.{a.name}"))

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if (isinstance(node.value, ast.Name) and node.value.id in self.aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            self.private.append((node.lineno, f"{self.aliases[node.value.id]}.{node.attr}"))
        self.generic_visit(node)


def graph(root: Path = ROOT) -> tuple[dict[str, set[str]], list[str]]:
    """(module -> the edgert modules it imports, private names used across modules)."""
    known = modules(root)
    edges, private = {}, []
    for name, path in known.items():
        v = _Imports(name, path.name == "__init__.py", known)
        v.visit(ast.parse(path.read_text(), str(path)))
        edges[name] = v.edges
        private += [f"{path.relative_to(root)}:{line}: uses {what}" for line, what in v.private]
    return edges, private


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dot", action="store_true", help="print Graphviz")
    p.add_argument("--check", action="store_true", help="print only problems; exit 1 if any")
    args = p.parse_args(argv)
    edges, private = graph()
    circles = cycles(edges)
    if args.dot:
        print("digraph edgert {\n  rankdir=LR; node [shape=box, fontsize=10];")
        for v in sorted(edges):
            for w in sorted(edges[v]):
                print(f'  "{v}" -> "{w}";')
        print("}")
    elif not args.check:
        for v in sorted(edges):
            print(f"{v}: {', '.join(sorted(edges[v])) or '-'}")
    for c in circles:
        print("import circle: " + " <-> ".join(c), file=sys.stderr if not args.check else sys.stdout)
    for line in private:
        print("private name: " + line, file=sys.stderr if not args.check else sys.stdout)
    if args.check and not circles and not private:
        print(f"{len(edges)} modules, {sum(map(len, edges.values()))} imports: no circles, no private names "
              "used across modules")
    return 1 if circles or private else 0


if __name__ == "__main__":
    sys.exit(main())
