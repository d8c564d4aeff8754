"""The dump model: a dump as users think of it, with no Textual and no click.

One PA everywhere: ``pa`` (``PageRecord``, ``Translation``, ``ptov.Mapping``, ``check.Anomaly``,
ranges, exports) is the address the walker and the hardware use, the entry's output address
cut to the OAS for the UAT (the driver masks every table and data address with it) and the
whole output address for ARM LPAE (which does not cut: an SMMU raises an address size fault).
``pa_raw`` is what the entry says (UAT bits 51:14, the driver's ``p_paddr``); the two differ
only for an entry with bits at or above the OAS, the ``oa-beyond-oas`` finding.
"""

from dumpview.model.dump import Dump, Note, PageRecord, open_dump
from dumpview.model.errors import AddressError, DumpError, DumpFormatError, NotDumpedError
from dumpview.model.extension import Region, Space
from dumpview.model.guard import DumpChangedError
from dumpview.model.translate import Translation, WalkStep, translate

__all__ = [
    "AddressError",
    "Dump",
    "DumpChangedError",
    "DumpError",
    "DumpFormatError",
    "NotDumpedError",
    "Note",
    "PageRecord",
    "Region",
    "Space",
    "Translation",
    "WalkStep",
    "open_dump",
    "translate",
]
