"""Export records of a context the dump did not dump: its pages, read from its tables.

Owns ``context_page_lines``: one ``page`` record (schema ``dumpview-export/1``) per page a
context other than the dumped one maps, in VA order, from the entries of its carried tables
(``contexts.context_leaves``): the exact entry, the PA it maps (a block's page at its offset),
the ``p_flags`` the driver would have written for it, the path from the context's TTB, and
``"dumped": false`` with the reason ``context-not-dumped`` (``data_base64`` null under
``--with-data``): the dump carries that context's tables, never its pages. ``export`` calls it
for ``--context N``. Nothing here raises for a dump that opened.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from dumpview.model.contexts import (
    CONTEXT_NOT_DUMPED,
    CONTEXT_NOT_DUMPED_DETAIL,
    context_leaves,
    leaf_pas,
)
from dumpview.model.pagearrays import DEFAULT_CHUNK_PAGES, LeafTables

if TYPE_CHECKING:
    from dumpview.model.dump import Dump


def context_page_lines(
    dump: Dump, context: int, with_data: bool, chunk_pages: int = DEFAULT_CHUNK_PAGES
) -> Iterator[list[str]]:
    """The page records of ``context`` as JSON texts, ``chunk_pages`` at a time."""
    from dumpview.model.records import _groups, _members, _path_prefix, _raw_texts, attributes

    fmt = dump.entry_format
    va_all, pte_all, level_all = context_leaves(dump, context)
    leaf_tables = LeafTables(dump, context)
    reason = (CONTEXT_NOT_DUMPED, CONTEXT_NOT_DUMPED_DETAIL)
    prefixes = []
    for position, pa in enumerate(leaf_tables.table_pa):
        above = _path_prefix(leaf_tables.paths[position])
        prefixes.append(
            (above + "," if above else "")
            + f'{{"level":{leaf_tables.level[position]},"table":"{pa:#x}","index":'
        )
    tail = ',"data_base64":null}' if with_data else "}"
    head = '{"record":"page","va":"0x%x","pa":"0x%x","pa_raw":%s,"pte":"0x%x",'
    for start in range(0, len(va_all), chunk_pages):
        va = va_all[start : start + chunk_pages]
        pte = pte_all[start : start + chunk_pages]
        levels = level_all[start : start + chunk_pages]
        pa = leaf_pas(dump, va, pte, levels)
        raw_texts = _raw_texts(pa, leaf_pas(dump, va, pte, levels, raw=True))
        attrs = pte & np.uint64(fmt.attribute_mask)
        first, group = _groups(attrs)
        common = []
        for f in first.tolist():
            entry = int(pte[f])
            members = _members(attributes(entry, fmt.pack_p_flags(entry), False, True, reason, fmt))
            common.append(f'{head}{members},"table_path":[%s%d}}]{tail}')
        no_path = [line.replace(',"table_path":[%s%d}]', ',"table_path":null') for line in common]
        positions = leaf_tables.of_pages(va).tolist()
        lines = []
        for g, v, p, r, e, pos in zip(
            group.tolist(), va.tolist(), pa.tolist(), raw_texts, pte.tolist(), positions,
            strict=True,
        ):  # fmt: skip
            if pos >= 0:
                lines.append(common[g] % (v, p, r, e, prefixes[pos], leaf_tables.index_at(pos, v)))
            else:
                lines.append(no_path[g] % (v, p, r, e))
        yield lines
