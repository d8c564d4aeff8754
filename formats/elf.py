"""ELF64 little-endian core-file layouts: file header, program header, section header, notes.

This module owns the byte layouts only (construct declarations that both parse and build) and
the ELF constants a GPU devcoredump uses. It does no file I/O and applies no policy: callers
(the model when reading, the simulator's writer when building) decide what is valid.

Failure modes: ``parse`` of a declaration raises ``construct.ConstructError`` (for example
``ConstError`` for a wrong magic, ``StreamError`` for too few bytes); builders raise the same
when a field does not fit.
"""

from __future__ import annotations

from construct import (
    Aligned,
    Bytes,
    Check,
    Const,
    Int8ul,
    Int16ul,
    Int32ul,
    Int64ul,
    PaddedString,
    Padding,
    Rebuild,
    Struct,
    len_,
    this,
)

# e_ident
ELF_MAGIC = b"\x7fELF"
ELFCLASS64 = 2
ELFDATA2LSB = 1
EV_CURRENT = 1

# e_type / e_machine
ET_CORE = 4
EM_AARCH64 = 183

# Program header types and flags.
PT_NULL = 0
PT_LOAD = 1
PT_NOTE = 4
PF_X = 1
PF_W = 2
PF_R = 4

# Section header types; PN_XNUM escape for more than 65,534 program headers.
SHT_NULL = 0
SHT_STRTAB = 3
SHN_UNDEF = 0
PN_XNUM = 0xFFFF

EHDR_SIZE = 64
PHDR_SIZE = 56
SHDR_SIZE = 64
NHDR_SIZE = 12

ElfIdent = Struct(
    "magic" / Const(ELF_MAGIC),
    "ei_class" / Int8ul,
    "ei_data" / Int8ul,
    "ei_version" / Int8ul,
    "ei_osabi" / Int8ul,
    "ei_abiversion" / Int8ul,
    Padding(7),
)

Elf64_Ehdr = Struct(
    "e_ident" / ElfIdent,
    "e_type" / Int16ul,
    "e_machine" / Int16ul,
    "e_version" / Int32ul,
    "e_entry" / Int64ul,
    "e_phoff" / Int64ul,
    "e_shoff" / Int64ul,
    "e_flags" / Int32ul,
    "e_ehsize" / Int16ul,
    "e_phentsize" / Int16ul,
    "e_phnum" / Int16ul,
    "e_shentsize" / Int16ul,
    "e_shnum" / Int16ul,
    "e_shstrndx" / Int16ul,
)

Elf64_Phdr = Struct(
    "p_type" / Int32ul,
    "p_flags" / Int32ul,
    "p_offset" / Int64ul,
    "p_vaddr" / Int64ul,
    "p_paddr" / Int64ul,
    "p_filesz" / Int64ul,
    "p_memsz" / Int64ul,
    "p_align" / Int64ul,
)

Elf64_Shdr = Struct(
    "sh_name" / Int32ul,
    "sh_type" / Int32ul,
    "sh_flags" / Int64ul,
    "sh_addr" / Int64ul,
    "sh_offset" / Int64ul,
    "sh_size" / Int64ul,
    "sh_link" / Int32ul,
    "sh_info" / Int32ul,
    "sh_addralign" / Int64ul,
    "sh_entsize" / Int64ul,
)

Elf64_Nhdr = Struct(
    "n_namesz" / Int32ul,
    "n_descsz" / Int32ul,
    "n_type" / Int32ul,
)

# A whole note record: header, name + NUL padded to 4, descriptor padded to 4. The name is a C
# string: one with a NUL inside would build bytes that parse (and that readelf and pyelftools
# read) as a shorter name, so it is refused both ways (CheckError).
ElfNote = Struct(
    "n_namesz" / Rebuild(Int32ul, len_(this.name) + 1),
    "n_descsz" / Rebuild(Int32ul, len_(this.desc)),
    "n_type" / Int32ul,
    "name" / Aligned(4, PaddedString(this.n_namesz, "ascii")),
    Check(lambda ctx: "\0" not in ctx.name),
    "desc" / Aligned(4, Bytes(this.n_descsz)),
)

assert Elf64_Ehdr.sizeof() == EHDR_SIZE
assert Elf64_Phdr.sizeof() == PHDR_SIZE
assert Elf64_Shdr.sizeof() == SHDR_SIZE
assert Elf64_Nhdr.sizeof() == NHDR_SIZE


def align_up(value: int, alignment: int) -> int:
    """Round ``value`` up to a multiple of ``alignment`` (a power of two)."""
    return (value + alignment - 1) & ~(alignment - 1)


def note_size_bytes(name: str, desc_size_bytes: int) -> int:
    """Size of a note record with this name and descriptor size, padding included."""
    return NHDR_SIZE + align_up(len(name) + 1, 4) + align_up(desc_size_bytes, 4)


def build_note(name: str, note_type: int, desc: bytes) -> bytes:
    """Build one note record (header, padded name, padded descriptor). ``ConstructError`` for a
    name that is not ASCII or has a NUL inside, a type or descriptor that does not fit."""
    return ElfNote.build({"name": name, "n_type": note_type, "desc": desc})


def build_core_ehdr(
    *,
    phnum: int,
    shoff: int = 0,
    shnum: int = 0,
    shstrndx: int = SHN_UNDEF,
    entry: int = 0,
) -> bytes:
    """Build an ET_CORE / EM_AARCH64 file header with program headers right after it.

    ``phnum`` is the real count: at PN_XNUM or more it is written as PN_XNUM and the caller must
    put the real count in section header 0's ``sh_info`` (and pass ``shoff``/``shnum``).
    """
    return Elf64_Ehdr.build(
        {
            "e_ident": {
                "ei_class": ELFCLASS64,
                "ei_data": ELFDATA2LSB,
                "ei_version": EV_CURRENT,
                "ei_osabi": 0,
                "ei_abiversion": 0,
            },
            "e_type": ET_CORE,
            "e_machine": EM_AARCH64,
            "e_version": EV_CURRENT,
            "e_entry": entry,
            "e_phoff": EHDR_SIZE,
            "e_shoff": shoff,
            "e_flags": 0,
            "e_ehsize": EHDR_SIZE,
            "e_phentsize": PHDR_SIZE,
            "e_phnum": min(phnum, PN_XNUM),
            "e_shentsize": SHDR_SIZE if shnum else 0,
            "e_shnum": shnum,
            "e_shstrndx": shstrndx,
        }
    )


def build_shdr(**fields: int) -> bytes:
    """Build one section header; fields not given are zero."""
    values = dict.fromkeys((sc.name for sc in Elf64_Shdr.subcons), 0)
    values.update(fields)
    return Elf64_Shdr.build(values)
