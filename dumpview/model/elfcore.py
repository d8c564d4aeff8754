"""The ELF core container a dump is: its header, section headers, PT_LOAD index and notes.

Owns reading and validating what the rest of the model indexes before it answers anything:
the ELF identification and header (AArch64 ET_CORE, 64-bit little-endian), the section header
table (PN_XNUM's count lives in section 0), the PT_LOADs in VA order as numpy views whose dtype
comes from ``formats.elf.Elf64_Phdr`` (validated in cache-sized chunks: wrap, overlap, data past
the end of the file, ``p_filesz`` > ``p_memsz``, at most ``MAX_PAGES`` pages), and the notes of
every PT_NOTE (bounds checked, at most ``MAX_NOTES``, read with ``struct``). ``dumpview.model.dump``
builds the dump as users think of it on top of these.

Failure modes: ``DumpFormatError`` naming the file offset (of the header field, the program or
section header, the note) and what was expected; problems a reader can live with (misaligned or
empty PT_LOADs, a lying PN_XNUM, too many notes) are appended to the ``warnings`` list given.
Callers read the map inside their guard (``dumpview.model.guard``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import construct
import numpy as np

from dumpview.model.errors import DumpFormatError
from dumpview.npstruct import dtype_from_struct
from formats import elf, uat

PHDR_DTYPE = dtype_from_struct(elf.Elf64_Phdr)
SHDR_DTYPE = dtype_from_struct(elf.Elf64_Shdr)
CHECK_CHUNK = 1 << 15  # PT_LOADs validated per step (fits in cache)
# The most pages a dump may claim: a whole 39-bit UAT address space of 16 KiB pages (512 GiB;
# the driver's kernel context maps at most 192 GiB of it), or 128 GiB of 4 KiB LPAE pages.
# Pages without data cost nothing in the file, so without a bound a 56-byte program header
# could claim 2**50 pages.
MAX_PAGES = 1 << (uat.UAT_IAS - uat.PAGE_SHIFT)
MAX_NOTES = 4096  # notes read, whatever the PT_NOTEs hold (a devcoredump has two)
# Elf64_Nhdr (n_namesz, n_descsz, n_type) for struct: a note header per ~10 ns, not construct's
# ~20 µs (a 12 MB PT_NOTE holds a million empty notes); checked against the declaration.
_NHDR = struct.Struct("<III")
assert _NHDR.size == elf.Elf64_Nhdr.sizeof()


@dataclass(frozen=True)
class Note:
    name: str
    note_type: int
    offset: int  # of the descriptor in the file
    desc: memoryview


def parse_header(mv: memoryview, warnings: list[str]) -> construct.Container:
    """The ELF header of an AArch64 core, after checking its identification. DumpFormatError
    at the offset of the first field that is wrong; a type other than ET_CORE is a warning."""
    ident = mv[:16]
    if bytes(ident[:4]) != elf.ELF_MAGIC:
        raise DumpFormatError(
            0, f"not an ELF file: magic is {bytes(ident[:4]).hex(' ')}, expected 7f 45 4c 46"
        )
    if ident[4] != elf.ELFCLASS64:
        raise DumpFormatError(4, f"ELF class {ident[4]}, expected 2 (ELFCLASS64)")
    if ident[5] != elf.ELFDATA2LSB:
        raise DumpFormatError(5, f"ELF data encoding {ident[5]}, expected 1 (little-endian)")
    header = elf.Elf64_Ehdr.parse(mv[: elf.EHDR_SIZE])
    if header.e_machine != elf.EM_AARCH64:
        raise DumpFormatError(
            18, f"e_machine {header.e_machine}, expected {elf.EM_AARCH64} (AArch64)"
        )
    if header.e_type != elf.ET_CORE:
        warnings.append(f"e_type is {header.e_type}, not ET_CORE (4)")
    if header.e_phentsize != elf.PHDR_SIZE:
        raise DumpFormatError(54, f"e_phentsize {header.e_phentsize}, expected {elf.PHDR_SIZE}")
    return header


def read_sections(mv: memoryview, header: construct.Container, size_bytes: int) -> np.ndarray:
    """The section header table, copied out of the map (empty without one). DumpFormatError
    when it runs past the end of the file or its entries are not 64 bytes."""
    if header.e_shoff == 0:
        return np.zeros(0, dtype=SHDR_DTYPE)
    if header.e_shentsize != elf.SHDR_SIZE:
        raise DumpFormatError(58, f"e_shentsize {header.e_shentsize}, expected {elf.SHDR_SIZE}")
    count = header.e_shnum or 1  # e_shnum 0 with e_shoff: the real count is in sh_size of 0
    end = header.e_shoff + count * elf.SHDR_SIZE
    if end > size_bytes:
        raise DumpFormatError(
            header.e_shoff,
            f"section headers end at {end:#x}, past the end of the file ({size_bytes:#x})",
        )
    sections = np.frombuffer(mv, dtype=SHDR_DTYPE, count=count, offset=header.e_shoff)
    if header.e_shnum == 0 and int(sections[0]["sh_size"]) > 1:
        count = int(sections[0]["sh_size"])
        end = header.e_shoff + count * elf.SHDR_SIZE
        if end > size_bytes:
            raise DumpFormatError(
                header.e_shoff, f"{count} section headers run past the end of the file"
            )
        sections = np.frombuffer(mv, dtype=SHDR_DTYPE, count=count, offset=header.e_shoff)
    return sections.copy()  # out of the map: read again after open (the extension's)


def program_header_count(
    header: construct.Container, sections: np.ndarray, warnings: list[str]
) -> int:
    """``e_phnum``, or under PN_XNUM the count section header 0 carries in ``sh_info``."""
    phnum = header.e_phnum
    if phnum != elf.PN_XNUM:
        return phnum
    if not len(sections):
        raise DumpFormatError(
            56, "e_phnum is PN_XNUM (0xffff) but there is no section header 0 to carry the count"
        )
    phnum = int(sections[0]["sh_info"])
    if phnum < elf.PN_XNUM:
        warnings.append(
            f"e_phnum is PN_XNUM (0xffff) but section header 0 (at {header.e_shoff:#x}) "
            f"gives {phnum} program headers: PN_XNUM is for 65,535 or more"
        )
    return phnum


class LoadIndex:
    """The PT_LOAD program headers in VA order: ``loads`` is a zero-copy view of the mapped rows
    in the usual layout (PT_NOTE first, then every PT_LOAD, sorted), else a sorted copy; the
    program header of each is found again through ``phdr_offset``."""

    def __init__(self, phdrs: np.ndarray, e_phoff: int) -> None:
        self.e_phoff = e_phoff
        is_load = phdrs["p_type"] == elf.PT_LOAD
        n_load = int(np.count_nonzero(is_load))
        first = int(is_load.argmax()) if n_load else 0
        phdr_index: np.ndarray | None
        if is_load[first : first + n_load].all():
            loads = phdrs[first : first + n_load]
            phdr_index = None
        else:
            phdr_index = np.flatnonzero(is_load)
            loads = phdrs[phdr_index]
        va = loads["p_vaddr"]
        if n_load > 1 and not np.all(va[1:] >= va[:-1]):
            order = np.argsort(va, kind="stable")
            loads = loads[order]
            phdr_index = (np.arange(first, first + n_load) if phdr_index is None else phdr_index)[
                order
            ]
        self.first = first
        self.phdr_index = phdr_index  # None: PT_LOAD k is program header first + k
        self.loads = loads

    def __len__(self) -> int:
        return len(self.loads)

    def phdr_offset(self, seg: int) -> int:
        """File offset of the program header of PT_LOAD ``seg`` (VA order)."""
        index = self.first + seg if self.phdr_index is None else int(self.phdr_index[seg])
        return int(self.e_phoff + index * elf.PHDR_SIZE)

    def va(self, seg: int) -> int:
        return int(self.loads[seg]["p_vaddr"])

    def validate(self, page_size: int, file_size: int, warnings: list[str]) -> tuple[int, int]:
        """Check every PT_LOAD (wrap, overlap, data past EOF, filesz > memsz, at most
        ``MAX_PAGES`` pages in all; warnings for misalignment and p_memsz 0) in cache-sized
        chunks straight off the mapped program headers; returns (total pages, dumped pages).
        DumpFormatError at the program header of the first PT_LOAD that is wrong."""
        loads = self.loads
        n = len(loads)
        page = np.uint64(page_size)
        mask = np.uint64(page_size - 1)
        size = np.uint64(file_size)
        total = dumped = unaligned = empty = 0
        first_unaligned: int | None = None
        first_empty: int | None = None
        prev_end: int | None = None
        for start in range(0, n, CHECK_CHUNK):
            block = loads[start : start + CHECK_CHUNK]
            va, memsz = block["p_vaddr"], block["p_memsz"]
            filesz, offset = block["p_filesz"], block["p_offset"]
            end = va + memsz  # 0 for a PT_LOAD ending exactly at 2**64 (allowed)
            at_top = (end == 0) & (memsz != 0)
            file_end = offset + filesz
            for hit, problem in (
                ((end < va) & ~at_top, "wraps past the top of the address space"),
                (
                    (filesz > 0) & ((file_end > size) | (file_end < offset)),
                    "data at {off:#x}+{filesz:#x} runs past the end of the file ({eof:#x})",
                ),
                (filesz > memsz, "p_filesz is larger than p_memsz"),
            ):
                if hit.any():
                    self._raise_bad_segment(start + int(hit.argmax()), problem, file_size)
            if prev_end is not None and prev_end > int(va[0]):
                self._raise_overlap(start - 1)
            hit = (end[:-1] > va[1:]) | at_top[:-1]  # nothing can follow a PT_LOAD at the top
            if hit.any():
                self._raise_overlap(start + int(hit.argmax()))
            prev_end = 1 << 64 if at_top[-1] else int(end[-1])
            hit = ((va | memsz) & mask) != 0
            count = int(np.count_nonzero(hit))
            if count and first_unaligned is None:
                first_unaligned = start + int(hit.argmax())
            unaligned += count
            hit = memsz == 0
            count = int(np.count_nonzero(hit))
            if count and first_empty is None:
                first_empty = start + int(hit.argmax())
            empty += count
            # ceil(p_memsz / page), as Dump.pages and pagearrays count (no overflow near 2**64;
            # segments neither wrap nor overlap here, so a chunk's sum fits in 64 bits)
            pages = memsz // page + ((memsz & mask) != 0)
            chunk_total = int(pages.sum())
            if total + chunk_total > MAX_PAGES:
                crossing = int(np.argmax(np.cumsum(pages) > np.uint64(MAX_PAGES - total)))
                self._raise_too_many_pages(
                    start + crossing, total + int(pages[: crossing + 1].sum())
                )
            total += chunk_total
            dumped += int((filesz // page).sum())
        if first_unaligned is not None:
            i = first_unaligned
            warnings.append(
                f"PT_LOAD VA {self.va(i):#x} size {int(loads[i]['p_memsz']):#x} is not "
                f"{page_size // 1024} KiB page aligned ({unaligned} such segments)"
            )
        if first_empty is not None:
            warnings.append(
                f"PT_LOAD VA {self.va(first_empty):#x} (program header at "
                f"{self.phdr_offset(first_empty):#x}) has p_memsz 0 and maps nothing "
                f"({empty:,} such segments)"
            )
        return total, dumped

    def _raise_bad_segment(self, i: int, problem: str, file_size: int) -> None:
        """DumpFormatError at PT_LOAD ``i``'s program header; ``problem`` may name its fields."""
        row = self.loads[i]
        detail = problem.format(
            off=int(row["p_offset"]), filesz=int(row["p_filesz"]), eof=file_size
        )
        raise DumpFormatError(self.phdr_offset(i), f"PT_LOAD VA {self.va(i):#x}: {detail}")

    def _raise_too_many_pages(self, i: int, pages: int) -> None:
        """PT_LOAD ``i`` brings the page count to ``pages``, past ``MAX_PAGES``."""
        raise DumpFormatError(
            self.phdr_offset(i),
            f"PT_LOAD VA {self.va(i):#x} (p_memsz {int(self.loads[i]['p_memsz']):#x}) brings "
            f"the dump to {pages:,} pages, more than the {MAX_PAGES:,} dumpview reads "
            f"(a whole {uat.UAT_IAS}-bit UAT address space)",
        )

    def _raise_overlap(self, i: int) -> None:
        """PT_LOAD ``i + 1`` starts before PT_LOAD ``i`` ends."""
        row = self.loads[i]
        end = int(row["p_vaddr"]) + int(row["p_memsz"])
        raise DumpFormatError(
            self.phdr_offset(i + 1),
            f"PT_LOAD VA {self.va(i + 1):#x} overlaps the PT_LOAD at "
            f"{int(row['p_vaddr']):#x}..{end:#x}",
        )


def read_notes(
    mv: memoryview, phdrs: np.ndarray, e_phoff: int, size_bytes: int, warnings: list[str]
) -> tuple[Note, ...]:
    """Every note of every PT_NOTE segment, bounds checked, at most ``MAX_NOTES`` (a warning
    says where the rest begin). ``desc`` is a view of the map. DumpFormatError at a PT_NOTE
    whose data runs past the end of the file, or a note that overruns its segment."""
    out: list[Note] = []
    note_idx = np.flatnonzero(phdrs["p_type"] == elf.PT_NOTE)
    # PT_NOTEs without data hold no note: skipped in bulk (a file can have a million).
    for i in note_idx[phdrs["p_filesz"][note_idx] > 0].tolist():
        ph = phdrs[i]
        start, size = int(ph["p_offset"]), int(ph["p_filesz"])
        where = int(e_phoff) + i * elf.PHDR_SIZE
        if start + size > size_bytes:
            raise DumpFormatError(
                where,
                f"PT_NOTE data {start:#x}+{size:#x} runs past the "
                f"end of the file ({size_bytes:#x})",
            )
        pos, end = start, start + size
        while pos < end:
            if len(out) >= MAX_NOTES:
                warnings.append(
                    f"more than {MAX_NOTES:,} notes: the rest, from offset {pos:#x}, are not "
                    "read (a devcoredump has two)"
                )
                return tuple(out)
            if end - pos < elf.NHDR_SIZE:
                raise DumpFormatError(
                    pos,
                    f"note header needs {elf.NHDR_SIZE} bytes, only "
                    f"{end - pos} left in the PT_NOTE segment",
                )
            namesz, descsz, note_type = _NHDR.unpack_from(mv, pos)
            name_off = pos + elf.NHDR_SIZE
            desc_off = name_off + elf.align_up(namesz, 4)
            next_pos = desc_off + elf.align_up(descsz, 4)
            if next_pos > end:
                raise DumpFormatError(
                    pos,
                    f"note (namesz {namesz}, descsz {descsz}) overruns its "
                    f"PT_NOTE segment, which ends at {end:#x}",
                )
            name = bytes(mv[name_off : name_off + namesz]).rstrip(b"\0")
            out.append(
                Note(name.decode("latin-1"), note_type, desc_off, mv[desc_off : desc_off + descsz])
            )
            pos = next_pos
    return tuple(out)
