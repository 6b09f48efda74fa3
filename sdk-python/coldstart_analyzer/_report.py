"""Turns the recorder's module tree into the payload's module_timings and module_tree.

The recorder's nodes are modules; here each module is attributed (_attribution.py) and the tree is
folded to package level with the Node.js SDK's semantics (sdk/src/runtime/recorder.ts,
sdk/src/invoke/report.ts): a module of the same package as its parent stays in the parent's node
(its self time added, its inclusive time already inside the parent's), a module of another package
opens (or re-enters) a child node. Both outputs are bounded like Node's: 300 keys in
module_timings, the tree capped at four levels, eight children per node and 80 nodes, the rest
folded into "(other)".
"""

from __future__ import annotations  # annotations are never evaluated: no typing import at run time


from ._recorder import Node, Recorder

MAX_TIMINGS = 300
TREE_MAX_DEPTH = 4
TREE_MAX_CHILDREN = 8
TREE_MAX_NODES = 80
OTHER = "(other)"


def ms(ns: float) -> float:
    """ns -> ms, rounded to 1 µs."""
    return round(ns / 1e3) / 1e3


class PackageNode:
    __slots__ = ("key", "version", "self_ns", "inclusive_ns", "loads", "failed", "children")

    def __init__(self, key: str, version: Optional[str]) -> None:
        self.key = key
        self.version = version
        self.self_ns = 0
        self.inclusive_ns = 0
        self.loads = 0
        self.failed = 0
        self.children: Dict[str, "PackageNode"] = {}


def fold(root: Node, attribute: Callable[[str, Optional[str]], Tuple[str, Optional[str]]]) -> PackageNode:
    """The package-level tree of a recorder's module tree."""
    top = PackageNode("(init)", None)

    def visit(children: Optional[Dict[str, Node]], parent: PackageNode, parent_key: Optional[str]) -> None:
        if not children:
            return
        for child in children.values():
            key, version = attribute(child.name, child.origin)
            if key == parent_key:
                target = parent
                target.self_ns += child.self_ns
            else:
                target = parent.children.get(key)
                if target is None:
                    target = parent.children[key] = PackageNode(key, version)
                target.self_ns += child.self_ns
                target.inclusive_ns += child.inclusive_ns
                target.loads += child.loads
                target.failed += child.failed
            visit(child.children, target, key)

    visit(root.children, top, None)
    return top


def self_by_key(tree: PackageNode) -> Dict[str, int]:
    out: Dict[str, int] = {}
    stack = list(tree.children.values())
    while stack:
        node = stack.pop()
        out[node.key] = out.get(node.key, 0) + node.self_ns
        stack.extend(node.children.values())
    return out


def module_timings(self_ns: Dict[str, int]) -> Dict[str, float]:
    """Self time per package or file in ms, largest first; beyond MAX_TIMINGS the rest is "(other)"."""
    entries = sorted(((k, v) for k, v in self_ns.items() if v > 0), key=lambda kv: -kv[1])
    kept = entries[: MAX_TIMINGS - 1] if len(entries) > MAX_TIMINGS else entries
    out = {key: ms(ns) for key, ns in kept}
    if len(kept) < len(entries):
        out[OTHER] = ms(sum(ns for _, ns in entries[len(kept) :]))
    return out


def _subtree_self(node: PackageNode) -> int:
    return node.self_ns + sum(_subtree_self(c) for c in node.children.values())


def module_tree(recorder: Recorder, tree: PackageNode, coverage: str) -> dict:
    budget = [TREE_MAX_NODES]
    truncated = [False]

    def build(node: PackageNode, depth: int) -> Optional[List[dict]]:
        if not node.children:
            return None
        if depth > TREE_MAX_DEPTH or budget[0] <= 0:
            truncated[0] = True
            return None
        ordered = sorted(node.children.values(), key=lambda n: -n.inclusive_ns)
        keep = min(len(ordered), TREE_MAX_CHILDREN, budget[0])
        entries: List[dict] = []
        for child in ordered[:keep]:
            budget[0] -= 1
            entry: dict = {"name": child.key, "self_ms": ms(child.self_ns), "total_ms": ms(child.inclusive_ns)}
            if child.version is not None:
                entry["version"] = child.version
            if child.loads > 1:
                entry["loads"] = child.loads
            if child.failed > 0:
                entry["failed"] = child.failed
            below = build(child, depth + 1)
            if below is not None:
                entry["children"] = below
            entries.append(entry)
        if keep < len(ordered):
            truncated[0] = True
            rest = ordered[keep:]
            entries.append(
                {
                    "name": OTHER,
                    "self_ms": ms(sum(_subtree_self(r) for r in rest)),
                    "total_ms": ms(sum(r.inclusive_ns for r in rest)),
                    "packages": len(rest),
                }
            )
        return entries

    children = build(tree, 1) or []
    return {
        "load_ms": ms(recorder.load_ns),
        "modules": recorder.modules,
        "coverage": coverage,
        "truncated": truncated[0],
        "children": children,
    }
