#!/usr/bin/env python3
"""Count import cycles between the files of a package: `python3 tools/import_cycles.py monitorkit` (imports inside functions and module names in strings count too)."""
import ast, sys, pathlib
root = pathlib.Path(sys.argv[1]); pkg = root.name
mods = {}
for p in root.rglob("*.py"):
    rel = p.relative_to(root.parent).with_suffix("")
    name = ".".join(rel.parts)
    if name.endswith(".__init__"): name = name[:-9]
    mods[name] = p
def resolve(cur, node, ispkg):
    out = []
    if isinstance(node, ast.Import):
        for a in node.names: out.append(a.name)
    else:
        base = node.module or ""
        if node.level:
            parts = cur.split(".")
            if not ispkg: parts = parts[:-1]
            parts = parts[: len(parts) - (node.level - 1)]
            base = ".".join(parts + ([base] if base else []))
        for a in node.names:
            full = base + "." + a.name
            out.append(full if full in mods else base)
    return out
g = {m: set() for m in mods}
for m, p in mods.items():
    tree = ast.parse(p.read_text())
    ispkg = p.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for t in resolve(m, node, ispkg):
                while t and t not in mods: t = t.rpartition(".")[0]
                if t and t != m and t.startswith(pkg): g[m].add(t)
        # string imports
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in mods and node.value != m:
            g[m].add(node.value)
# exclude edges to parent packages' __init__ ? keep all
# Tarjan
idx = {}; low = {}; st = []; on = set(); sccs = []; c = [0]
sys.setrecursionlimit(10000)
def sc(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in g[v]:
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(sorted(comp))
for v in g:
    if v not in idx: sc(v)
print(len(sccs), "cycle groups")
for s in sccs: print(" ", len(s), s)
