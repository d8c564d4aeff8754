"""``dumpview generate``: run a scenario of the simulator and write its dump."""

from __future__ import annotations

import sys

import click

from dumpview.cli.common import ADDRESS, LazyProgress, fail, with_examples


@with_examples(
    "dumpview generate --scenario faults --seed 7 -o faults.dump",
    "dumpview generate --scenario smmu --entry-format lpae-64k -o smmu64k.dump",
)
@click.command()
@click.option(
    "--scenario",
    default="minimal",
    show_default=True,
    help="minimal, asahi-kernel, user-contexts, faults or large (UAT); smmu or faults (LPAE).",
)
@click.option(
    "--entry-format",
    type=click.Choice(["uat", "lpae-4k", "lpae-16k", "lpae-64k"]),
    default=None,
    help="Page-table entry format: the Apple UAT, or ARM LPAE stage 1 (an ARM SMMU's "
    "io-pgtable) with a 4K, 16K or 64K granule. Default: uat; lpae-4k for --scenario smmu.",
)
@click.option("--seed", type=ADDRESS, default=0, show_default=True, help="Random seed.")
@click.option("--mapped-mib", type=int, default=None, help="large: MiB of GEM buffers mapped.")
@click.option(
    "--scatter", is_flag=True, default=None, help="large: scatter PAs (one PT_LOAD per page)."
)
@click.option(
    "--dumped-percent",
    type=int,
    default=None,
    help="large: percent of pages with data (the rest borrow_phys refuses).",
)
@click.option("--contexts", type=int, default=None, help="user-contexts: how many user VMs.")
@click.option(
    "--huge-blocks",
    is_flag=True,
    default=None,
    help="smmu: also map blocks above 512 MiB (the 4K granule's 1 GiB block: 262,144 pages).",
)
@click.option(
    "--driver-layout",
    is_flag=True,
    help="Write exactly what the driver writes: no dumpview extension.",
)
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False),
    help="The dump file to write (atomically).",
)
def generate(
    scenario: str,
    entry_format: str | None,
    seed: int,
    mapped_mib: int | None,
    scatter: bool | None,
    dumped_percent: int | None,
    contexts: int | None,
    huge_blocks: bool | None,
    driver_layout: bool,
    output: str,
) -> None:
    """Simulate the driver and its firmware up to a crash, and write the dump."""
    from dumpview.sim.errors import SimError
    from dumpview.sim.scenarios import ALL_SCENARIO_NAMES, ScenarioError, generate_file

    if scenario not in ALL_SCENARIO_NAMES:
        fail(f"generate: unknown scenario {scenario!r} (known: {', '.join(ALL_SCENARIO_NAMES)})")
    if entry_format is None:
        entry_format = "lpae-4k" if scenario == "smmu" else "uat"
    knobs = {
        k: v
        for k, v in (
            ("mapped_mib", mapped_mib),
            ("scatter", scatter),
            ("dumped_percent", dumped_percent),
            ("contexts", contexts),
            ("huge_blocks", huge_blocks),
        )
        if v is not None
    }
    progress = LazyProgress("writing pages") if sys.stderr.isatty() else None
    try:
        summary = generate_file(
            output,
            scenario=scenario,
            seed=seed,
            knobs=knobs,
            driver_layout=driver_layout,
            progress=progress,
            entry_format=entry_format,
        )
    except ScenarioError as exc:
        fail(f"generate: {exc}")
    except SimError as exc:
        fail(f"generate: simulation failed: {exc}")
    except OSError as exc:
        fail(f"generate: {output}: {exc.strerror or exc}")
    finally:
        if progress is not None:
            progress.close()
    click.echo(
        f"{output}: {summary['scenario']} seed {summary['seed']}: "
        f"{summary['segments']:,} PT_LOAD, {summary['tables']:,} tables, "
        f"{summary['leaves']:,} pages ({summary['dumped_pages']:,} dumped), "
        f"{summary['size_bytes']:,} bytes",
        err=True,
    )


COMMANDS = (generate,)
