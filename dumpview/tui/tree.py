"""The level tree as a row list: nodes that expand lazily, drawn like Textual's ``Tree``.

Owns ``LevelsTree``, a ``RowList`` over the visible nodes (guides, expander, label), and its
``TreeNode``. Textual's ``Tree`` repainted every line under a node whose selection changed and
drew a line in ~0.7 ms, so a jump between the top table and a leaf table redrew the whole tree
(~13 ms of a back/forward key); here a cursor move redraws two rows at the row list's cost,
and a cut label ends in an ellipsis like every other row.

Keys: Up/Down/PgUp/PgDn/Home/End move, Space or Enter expands or collapses, Right expands (or
goes to the first child), Left collapses (or goes to the parent). ``on_expand`` is called
before a node opens (children load then); ``on_node`` when the cursor lands on a node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.binding import Binding

from dumpview.tui.widgets import Row, RowList, RowSource

GUIDE_LAST, GUIDE_MID, GUIDE_PIPE, GUIDE_NONE = "└ ", "├ ", "│ ", "  "
OPEN, CLOSED, LEAF = "▼ ", "▶ ", ""


class TreeNode:
    """One node: ``label`` (text), ``data``, ``children`` (added with ``add``)."""

    def __init__(
        self, tree: LevelsTree, parent: TreeNode | None, label: str, data: Any, allow_expand: bool
    ) -> None:
        self.tree = tree
        self.parent = parent
        self.label = label
        self.data = data
        self.allow_expand = allow_expand
        self.children: list[TreeNode] = []
        self.is_expanded = False
        self.line = -1  # its row while visible, else -1

    def add(self, label: str, data: Any = None, allow_expand: bool = True) -> TreeNode:
        node = TreeNode(self.tree, self, label, data, allow_expand)
        self.children.append(node)
        if self.is_expanded:
            self.tree.rebuild()
        return node

    def expand(self) -> TreeNode:
        if not self.is_expanded:
            self.tree.expand(self)
        return self

    def collapse(self) -> TreeNode:
        if self.is_expanded:
            self.is_expanded = False
            self.tree.rebuild()
        return self

    def toggle(self) -> TreeNode:
        return self.collapse() if self.is_expanded else self.expand()


class _Visible(RowSource):
    """The rows of the expanded nodes, each with its guides."""

    def __init__(self, nodes: list[tuple[TreeNode, str]]) -> None:
        self.nodes = nodes
        self.cells = max((len(g) + 2 + len(n.label) for n, g in nodes), default=0)

    def __len__(self) -> int:
        return len(self.nodes)

    def row(self, index: int) -> Row:
        node, guides = self.nodes[index]
        expander = (OPEN if node.is_expanded else CLOSED) if node.allow_expand else LEAF
        return [(guides, "rowlist--dim"), (expander, None), (node.label, None)]

    def width(self) -> int:
        return self.cells


class LevelsTree(RowList):
    """A tree of nodes under a hidden ``root``, drawn one row per visible node."""

    BINDINGS = [
        Binding("space,enter", "toggle", "Expand", show=False),
        Binding("right", "open", "Expand", show=False),
        Binding("left", "close", "Collapse", show=False),
    ]

    def __init__(self, label: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.root = TreeNode(self, None, label, None, True)
        self.root.is_expanded = True
        self.on_expand: Callable[[TreeNode], None] | None = None
        self.on_node: Callable[[TreeNode], None] | None = None
        self.on_cursor = self._cursor_moved

    @property
    def cursor_node(self) -> TreeNode | None:
        nodes = self.source.nodes if isinstance(self.source, _Visible) else []
        return nodes[self.cursor][0] if 0 <= self.cursor < len(nodes) else None

    def expand(self, node: TreeNode) -> None:
        if self.on_expand is not None:
            self.on_expand(node)
        node.is_expanded = True
        self.rebuild()

    def rebuild(self) -> None:
        """Recompute the visible rows (after nodes were added, expanded or collapsed), the
        cursor staying on its node."""
        current = self.cursor_node
        rows: list[tuple[TreeNode, str]] = []

        def visit(node: TreeNode, prefix: str) -> None:
            top = node is self.root  # its children are the roots: no guides
            last = len(node.children) - 1
            for i, child in enumerate(node.children):
                guide = "" if top else prefix + (GUIDE_LAST if i == last else GUIDE_MID)
                child.line = len(rows)
                rows.append((child, guide))
                if child.is_expanded:
                    visit(child, "" if top else prefix + (GUIDE_NONE if i == last else GUIDE_PIPE))

        def hide(node: TreeNode) -> None:
            for child in node.children:
                child.line = -1
                hide(child)

        hide(self.root)
        visit(self.root, "")
        cursor = current.line if current is not None and current.line >= 0 else self.cursor
        self.set_source(_Visible(rows), cursor, keep_x=True, quiet=True)

    def move_cursor(self, node: TreeNode) -> None:
        """Put the cursor on ``node`` (it must be visible: its ancestors expanded)."""
        if node.line >= 0:
            self.cursor = node.line

    def _cursor_moved(self, row: int) -> None:
        node = self.cursor_node
        if node is not None and self.on_node is not None:
            self.on_node(node)

    def action_toggle(self) -> None:
        node = self.cursor_node
        if node is not None and node.allow_expand:
            node.toggle()

    def action_open(self) -> None:
        node = self.cursor_node
        if node is None or not node.allow_expand:
            return
        if not node.is_expanded:
            node.expand()
        elif node.children:
            self.move_cursor(node.children[0])

    def action_close(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node.is_expanded:
            node.collapse()
        elif node.parent is not None and node.parent is not self.root:
            self.move_cursor(node.parent)

    def action_activate(self) -> None:  # a double click toggles, as Enter does
        self.action_toggle()
