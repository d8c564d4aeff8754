"""ARMv8 exception syndromes (ESR_ELx) as a person reads them.

Owns ``decode_esr``: the exception class (EC, bits 31:26; names from the Arm ARM, and 0x3F
IMPDEF as m1n1 names it), IL, ISS and, for the classes that have them, the fault status code
(``fault_status_name``: "translation fault, level 3") and syndrome bits (WnR, ISV, FnV, EA, CM,
S1PTW; the MRS/MSR operands; SError's AET; BRK/SVC immediates). Total over 64-bit values: bits
it does not know are named, never rejected.
"""

from __future__ import annotations

from dataclasses import dataclass

# ESR_ELx.EC (bits 31:26), Arm ARM D19.2 "ESR_EL1".
EC_NAMES: dict[int, str] = {
    0x00: "unknown reason",
    0x01: "trapped WFI/WFE",
    0x03: "trapped MCR/MRC (coproc 0b1111), AArch32",
    0x04: "trapped MCRR/MRRC (coproc 0b1111), AArch32",
    0x05: "trapped MCR/MRC (coproc 0b1110), AArch32",
    0x06: "trapped LDC/STC, AArch32",
    0x07: "SVE/SIMD/floating point access trap",
    0x09: "pointer authentication instruction trap",
    0x0A: "trapped LD64B/ST64B",
    0x0C: "trapped MRRC (coproc 0b1110), AArch32",
    0x0D: "branch target exception",
    0x0E: "illegal execution state",
    0x11: "SVC, AArch32",
    0x12: "HVC, AArch32",
    0x13: "SMC, AArch32",
    0x15: "SVC, AArch64",
    0x16: "HVC, AArch64",
    0x17: "SMC, AArch64",
    0x18: "trapped MSR/MRS/system instruction, AArch64",
    0x19: "SVE access trap",
    0x1A: "trapped ERET/ERETAA/ERETAB",
    0x1C: "pointer authentication failure",
    0x1D: "SME access trap",
    0x1F: "implementation defined exception to EL3",
    0x20: "instruction abort from a lower EL",
    0x21: "instruction abort, same EL",
    0x22: "PC alignment fault",
    0x24: "data abort from a lower EL",
    0x25: "data abort, same EL",
    0x26: "SP alignment fault",
    0x27: "memory operation exception",
    0x28: "trapped floating point exception, AArch32",
    0x2C: "trapped floating point exception, AArch64",
    0x2F: "SError interrupt",
    0x30: "breakpoint from a lower EL",
    0x31: "breakpoint, same EL",
    0x32: "software step from a lower EL",
    0x33: "software step, same EL",
    0x34: "watchpoint from a lower EL",
    0x35: "watchpoint, same EL",
    0x38: "BKPT, AArch32",
    0x3A: "vector catch, AArch32",
    0x2D: "guarded control stack exception",
    0x3C: "BRK, AArch64",
    0x3F: "implementation defined exception (IMPDEF)",  # m1n1's ESR_EC.IMPDEF
}
EC_INSTRUCTION_ABORTS = frozenset({0x20, 0x21})
EC_DATA_ABORTS = frozenset({0x24, 0x25})
EC_CALLS = frozenset({0x15, 0x16, 0x17})  # SVC/HVC/SMC AArch64: ISS 15:0 is the immediate
EC_SYSREG = 0x18
EC_SERROR = 0x2F
EC_BRK = 0x3C

# DFSC/IFSC (ISS bits 5:0): groups of four by lookup level, then single codes.
FSC_LEVELLED: dict[int, str] = {
    0x00: "address size fault",
    0x04: "translation fault",
    0x08: "access flag fault",
    0x0C: "permission fault",
    0x14: "synchronous external abort on translation table walk",
    0x1C: "synchronous parity or ECC error on translation table walk",
    0x24: "granule protection fault on translation table walk",
}
FSC_NAMES: dict[int, str] = {
    0x10: "synchronous external abort, not on translation table walk",
    0x11: "synchronous tag check fault",
    0x13: "synchronous external abort on translation table walk, level -1",
    0x18: "synchronous parity or ECC error, not on translation table walk",
    0x1B: "synchronous parity or ECC error on translation table walk, level -1",
    0x21: "alignment fault",
    0x22: "debug exception",
    0x23: "granule protection fault on translation table walk, level -1",
    0x28: "granule protection fault, not on translation table walk",
    0x29: "address size fault, level -1",
    0x2B: "translation fault, level -1",
    0x30: "TLB conflict abort",
    0x31: "unsupported atomic hardware update fault",
    0x34: "implementation defined fault (lockdown)",
    0x35: "implementation defined fault (unsupported exclusive or atomic access)",
}
# The levelled fault statuses a dump's tables can confirm or contradict (FSC & ~3).
FSC_ADDRESS_SIZE, FSC_TRANSLATION, FSC_ACCESS_FLAG, FSC_PERMISSION = 0x00, 0x04, 0x08, 0x0C
FSC_TABLE_KINDS = frozenset({FSC_ADDRESS_SIZE, FSC_TRANSLATION, FSC_ACCESS_FLAG, FSC_PERMISSION})
SERROR_AET = {
    0: "uncontainable (UC)",
    1: "unrecoverable state (UEU)",
    2: "restartable state (UEO)",
    3: "recoverable state (UER)",
    6: "corrected (CE)",
}


def _bits(value: int, high: int, low: int) -> int:
    return (value >> low) & ((1 << (high - low + 1)) - 1)


def fault_status_name(fsc: int) -> str:
    """The name of a DFSC/IFSC value (ISS bits 5:0), e.g. "translation fault, level 3"."""
    levelled = FSC_LEVELLED.get(fsc & ~3)
    if levelled is not None:
        return f"{levelled}, level {fsc & 3}"
    return FSC_NAMES.get(fsc, f"reserved fault status {fsc:#04x}")


@dataclass
class EsrInfo:
    """A decoded ESR_ELx: class, instruction length, syndrome, and what the syndrome says.
    ``fsc`` is the fault status code of an instruction or data abort (None otherwise),
    ``far_valid`` False when such an abort sets FnV."""

    esr: int
    ec: int
    ec_name: str
    il: int
    iss: int
    details: list[str]
    fsc: int | None = None
    far_valid: bool = True
    write: bool | None = None  # data aborts: WnR

    @property
    def is_abort(self) -> bool:
        return self.ec in EC_DATA_ABORTS or self.ec in EC_INSTRUCTION_ABORTS

    @property
    def fault_status(self) -> str | None:
        """ "translation fault, level 3" for an abort, else None."""
        return None if self.fsc is None else fault_status_name(self.fsc)


def _abort_details(iss: int, data: bool) -> list[str]:
    fsc = _bits(iss, 5, 0)
    out = [f"{'DFSC' if data else 'IFSC'} {fsc:#04x}: {fault_status_name(fsc)}"]
    if data:
        out.append(f"WnR {_bits(iss, 6, 6)}: {'write' if _bits(iss, 6, 6) else 'read'}")
        if _bits(iss, 24, 24):
            size_bytes = 1 << _bits(iss, 23, 22)
            register = ("x" if _bits(iss, 15, 15) else "w") + str(_bits(iss, 20, 16))
            extra = ", sign-extended" if _bits(iss, 21, 21) else ""
            extra += ", acquire/release" if _bits(iss, 14, 14) else ""
            out.append(f"ISV 1: {size_bytes}-byte access, register {register}{extra}")
        else:
            out.append("ISV 0: no instruction syndrome")
    out.append("FnV 1: FAR is not valid" if _bits(iss, 10, 10) else "FnV 0: FAR is valid")
    if _bits(iss, 9, 9):
        out.append("EA 1: external abort type (implementation defined)")
    if data and _bits(iss, 8, 8):
        out.append("CM 1: fault on a cache maintenance or address translation instruction")
    if _bits(iss, 7, 7):
        out.append("S1PTW 1: fault on the stage 2 walk of a stage 1 translation table")
    return out


def _sysreg_details(iss: int) -> list[str]:
    op0, op2, op1 = _bits(iss, 21, 20), _bits(iss, 19, 17), _bits(iss, 16, 14)
    crn, rt, crm = _bits(iss, 13, 10), _bits(iss, 9, 5), _bits(iss, 4, 1)
    name = f"S{op0}_{op1}_C{crn}_C{crm}_{op2}"
    if _bits(iss, 0, 0):
        return [f"read (MRS) of {name} into x{rt}"]
    return [f"write (MSR) of x{rt} to {name}"]


def _serror_details(iss: int) -> list[str]:
    if _bits(iss, 24, 24):
        return [f"IDS 1: implementation defined syndrome {_bits(iss, 23, 0):#x}"]
    dfsc = _bits(iss, 5, 0)
    kind = {0x00: "uncategorized", 0x11: "asynchronous SError interrupt"}.get(
        dfsc, f"reserved DFSC {dfsc:#04x}"
    )
    aet = _bits(iss, 12, 10)
    out = [f"DFSC {dfsc:#04x}: {kind}"]
    if dfsc == 0x11:
        out.append(f"AET {aet}: {SERROR_AET.get(aet, 'reserved')}")
    return out


def decode_esr(esr: int) -> EsrInfo:
    """Decode ESR_ELx (any 64-bit value): EC bits 31:26, IL bit 25, ISS bits 24:0, ISS2 36:32."""
    esr &= (1 << 64) - 1
    ec, il, iss = _bits(esr, 31, 26), _bits(esr, 25, 25), _bits(esr, 24, 0)
    fsc: int | None = None
    write: bool | None = None
    if ec in EC_DATA_ABORTS or ec in EC_INSTRUCTION_ABORTS:
        details = _abort_details(iss, data=ec in EC_DATA_ABORTS)
        fsc = _bits(iss, 5, 0)
        write = bool(_bits(iss, 6, 6)) if ec in EC_DATA_ABORTS else None
    elif ec in EC_CALLS:
        details = [f"immediate {_bits(iss, 15, 0):#06x}"]
    elif ec == EC_BRK:
        details = [f"BRK comment {_bits(iss, 15, 0):#06x}"]
    elif ec == EC_SYSREG:
        details = _sysreg_details(iss)
    elif ec == EC_SERROR:
        details = _serror_details(iss)
    else:
        details = []
    if _bits(esr, 36, 32):
        details.append(f"ISS2 {_bits(esr, 36, 32):#x}")
    if esr >> 37:
        details.append(f"bits 63:37 are set ({esr >> 37 << 37:#x}): they should be zero")
    far_valid = fsc is None or not _bits(iss, 10, 10)
    name = EC_NAMES.get(ec, f"EC {ec:#04x}")
    return EsrInfo(esr, ec, name, il, iss, details, fsc, far_valid, write)
